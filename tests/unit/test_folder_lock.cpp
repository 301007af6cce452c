// The run-folder lock (core/folder_lock.h): one holder at a time, a message naming the folder and
// the holder, and the lock gone with its holder.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "probnas/comm/communicator.h"
#include "probnas/core/files.h"
#include "probnas/core/folder_lock.h"
#include "probnas/engine/run_support.h"
#include "test_support.h"

namespace {

using probnas::test::TempDir;
using probnas::FolderBusy;
using probnas::FolderLock;

TEST(FolderLock, OneHolderAtATimeAndTheSecondIsToldWhoHoldsIt) {
  TempDir tmp;
  const std::string dir = tmp.file("a/b");  // created on the way
  auto first = std::make_unique<FolderLock>(dir, "run.lock");
  EXPECT_EQ(first->path(), dir + "/run.lock");
  const std::string holder = probnas::read_file_bytes(first->path());
  EXPECT_NE(holder.find(", process " + std::to_string(::getpid()) + ", since "), std::string::npos) << holder;
  // A second open file description in the same process conflicts as another process would.
  try {
    FolderLock second(dir, "run.lock");
    FAIL() << "the second lock was granted";
  } catch (const FolderBusy& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("the run folder '" + dir + "' is in use by another run (host "), std::string::npos) << what;
    EXPECT_NE(what.find("process " + std::to_string(::getpid())), std::string::npos) << what;
  }
  // The refused attempt left the holder's description alone; releasing frees the folder.
  EXPECT_EQ(probnas::read_file_bytes(first->path()), holder);
  first.reset();
  EXPECT_TRUE(std::filesystem::exists(dir + "/run.lock"));  // the file stays; only the lock went
  EXPECT_NO_THROW(FolderLock again(dir, "run.lock"));
}

TEST(FolderLock, AFolderThatCannotBeMadeIsNamed) {
  TempDir tmp;
  std::ofstream(tmp.file("file")) << "x";
  try {
    FolderLock lock(tmp.file("file/run"), "run.lock");
    FAIL() << "locked a folder under a file";
  } catch (const FolderBusy&) {
    FAIL() << "reported as busy";
  } catch (const probnas::Error& e) {
    EXPECT_NE(std::string(e.what()).find(tmp.file("file/run")), std::string::npos) << e.what();
  }
}

TEST(FolderLock, LockRunFolderOnOneRankAndOff) {
  TempDir tmp;
  probnas::SerialCommunicator comm_one;
  probnas::Communicator* comm = &comm_one;
  auto lock = probnas::lock_run_folder(tmp.file("run"), true, *comm);
  ASSERT_NE(lock, nullptr);
  EXPECT_THROW(probnas::lock_run_folder(tmp.file("run"), true, *comm), FolderBusy);
  // run.lock = false: no lock taken, even on a held folder.
  EXPECT_EQ(probnas::lock_run_folder(tmp.file("run"), false, *comm), nullptr);
}

}  // namespace

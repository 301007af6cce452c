// Scoring a derived NB201 cell with NAS-Bench-201's table (the copy shipped in inputs/nb201), and
// the table reader's errors.
#include <gtest/gtest.h>

#include <filesystem>

#include "probnas/run/nb201_table.h"
#include "test_support.h"

namespace probnas {
namespace {

const std::string kShipped = std::string(PROBNAS_SOURCE_DIR) + "/inputs/nb201/nats_bench.csv";

TEST(Nb201Table, ScoresKnownCellsAsThePapersReport) {
  ASSERT_TRUE(std::filesystem::exists(kShipped)) << kShipped << " is part of the repository";
  const Nb201Table table(kShipped);
  EXPECT_EQ(table.size(), 15625u);
  // DrNAS's NB201 cell: 94.36 / 73.51 / 46.34 in the DrNAS paper.
  const auto drnas = table.find("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|");
  ASSERT_TRUE(drnas.has_value());
  EXPECT_EQ(drnas->index, 9930);
  EXPECT_NEAR(drnas->cifar10_test, 94.36, 0.01);
  EXPECT_NEAR(drnas->cifar100_test, 73.51, 0.01);
  // DARTS's collapse to all skip connections: 54.30 on CIFAR-10.
  const auto skip = table.find("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|");
  ASSERT_TRUE(skip.has_value());
  EXPECT_NEAR(skip->cifar10_test, 54.30, 0.01);
  EXPECT_FALSE(table.find("|bogus~0|").has_value());
}

TEST(Nb201Table, MalformedFilesAreNamed) {
  test::TempDir tmp;
  test::write_file(tmp.file("bad.csv"), "a,b,c\n1,2,3\n");
  EXPECT_NE(test::error_of([&] { Nb201Table t(tmp.file("bad.csv")); }).find("bad.csv"), std::string::npos);
  test::write_file(tmp.file("short.csv"), "CIFAR10TestAccuracy200Epochs,x,y,z,w\n1,2\n");
  const std::string msg = test::error_of([&] { Nb201Table t(tmp.file("short.csv")); });
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
  EXPECT_NE(test::error_of([&] { Nb201Table t(tmp.file("missing.csv")); }).find("missing.csv"), std::string::npos);
}

}  // namespace
}  // namespace probnas

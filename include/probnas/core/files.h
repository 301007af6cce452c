#pragma once
// Reading and appending files, folders, and the durable-rename primitives that
// ckpt/atomic_file.h builds the one atomic write protocol from.
#include <string>

namespace probnas {

// Renames `tmp` over `path` and fsyncs the folder, so the rename survives a crash.
void rename_durably(const std::string& tmp, const std::string& path);
void fsync_file(const std::string& path);       // names the path on failure
void fsync_directory(const std::string& path);  // makes renames in it durable
std::string read_file_bytes(const std::string& path);  // the whole file; names the path on failure
void append_line(const std::string& path, const std::string& line);  // appends line + '\n', flushed
void make_directories(const std::string& path);                      // names the path on failure
bool file_exists(const std::string& path);

}  // namespace probnas

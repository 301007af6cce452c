#pragma once
// Files are written atomically (DESIGN principle 5): name.tmp, flush, fsync, rename.
#include <string>

namespace probnas {

void write_file_atomic(const std::string& path, const std::string& content);
void append_line(const std::string& path, const std::string& line);  // appends line + '\n', flushed
void make_directories(const std::string& path);                      // names the path on failure
bool file_exists(const std::string& path);

}  // namespace probnas

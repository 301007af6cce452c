#pragma once
// The one write protocol every probnas file goes through (DESIGN principle 5): the content is
// written to `path`.tmp in full, flushed to disk (fsync), renamed over `path`, and the folder is
// flushed so the rename survives a crash. A reader then sees the old file or the new one, never a
// mix, and a killed writer leaves at most a .tmp file, which the next write replaces. Checkpoints,
// HDF5 shards, exported networks, SVG pictures and every text file of a run folder use it.
#include <functional>
#include <string>

namespace probnas::ckpt {

// Calls `write_tmp(tmp)` to create the file `tmp` (= `path`.tmp), then makes it `path` as above.
// If `write_tmp` throws, the .tmp file is removed and the exception passes on; `path` is untouched.
void write_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& write_tmp);
// The same for a file whose content is `content`.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace probnas::ckpt

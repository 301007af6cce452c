#include "probnas/ckpt/checkpoint.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "probnas/ckpt/atomic_file.h"
#include "probnas/core/files.h"
#include "probnas/core/log.h"

namespace probnas::ckpt {

namespace fs = std::filesystem;

#define PROBNAS_INCOMPATIBLE(...) throw Incompatible(::probnas::detail::concat(__VA_ARGS__), __FILE__, __LINE__)

const std::vector<std::string>& top_level_groups() {
  static const std::vector<std::string> names = {"meta", "model", "optim", "method", "loader", "rng", "history"};
  return names;
}

// ---------------------------------------------------------------------------------------------
// State <-> HDF5

void write_state(h5::Group& group, const State& state, const h5::DatasetOptions& options) {
  for (const auto& [name, value] : state.attrs()) std::visit([&](const auto& v) { group.set_attr(name, v); }, value);
  for (const auto& [name, tensor] : state.tensors()) group.write_tensor(name, tensor, options);
  for (const auto& [name, text] : state.texts()) {
    if (text.scalar)
      group.write_text(name, text.lines.empty() ? std::string() : text.lines.front());
    else
      group.write_strings(name, text.lines);
  }
  for (const auto& [name, child] : state.groups()) {
    h5::Group g = group.create_group(name);
    write_state(g, child, options);
  }
}

namespace {
void read_into(const h5::Group& group, State& state) {
  for (const auto& name : group.attr_names()) {
    switch (group.attr_kind(name)) {
      case h5::Object::AttrKind::integer: state.set_attr(name, group.attr_int(name)); break;
      case h5::Object::AttrKind::real: state.set_attr(name, group.attr_real(name)); break;
      case h5::Object::AttrKind::text: state.set_attr(name, group.attr_text(name)); break;
      default: break;  // attributes other tools added: not ours
    }
  }
  for (const auto& name : group.children()) {
    if (group.is_group(name)) {
      read_into(group.open_group(name), state.group(name));
      continue;
    }
    const h5::Dataset d = group.open_dataset(name);
    if (d.is_text()) {
      if (d.shape().empty())
        state.put_text(name, d.read_strings().front());
      else
        state.put_lines(name, d.read_strings());
    } else {
      state.put(name, d.read_tensor());
    }
  }
}
}  // namespace

State read_state(const h5::Group& group) {
  State s;
  read_into(group, s);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Files

void write_file(const std::string& path, const State& state, const SaveOptions& options) {
  PROBNAS_CHECK(state.has_group("meta"), "checkpoint state for '", path, "' has no meta group");
  // The file is built in memory and reaches the disk in plain writes (write_file_atomic): a full
  // disk or a quota is then one clear error naming the file, the temporary file is removed, and
  // HDF5 never holds a half-written file open (HDF5 1.10 crashed at exit after such a failure).
  // Readers read whole files into memory too (read_image), so no checkpoint is ever open in HDF5
  // on disk (and HDF5's file locking has nothing to do here).
  std::string bytes;
  {
    h5::File file = h5::File::create_in_memory(path);
    h5::Group root = file.root();
    h5::DatasetOptions dopt;
    dopt.compression = options.compression;
    // The top-level groups first, in the schema's order, so h5dump lists them as documented.
    for (const auto& name : top_level_groups()) {
      h5::Group g = root.create_group(name);
      if (state.has_group(name)) write_state(g, state.group(name), dopt);
    }
    for (const auto& [name, child] : state.groups()) {
      if (std::find(top_level_groups().begin(), top_level_groups().end(), name) != top_level_groups().end())
        continue;
      h5::Group g = root.create_group(name);
      write_state(g, child, dopt);
    }
    // Last: the mark that the file is whole. A reader ignores files without it.
    root.open_group("meta").set_attr("complete", int64_t{1});
    bytes = file.image();
  }
  write_file_atomic(path, bytes);
}

State read_image(const std::string& bytes, const std::string& name) {
  PROBNAS_CHECK(bytes.size() >= 8 && bytes.compare(0, 8, h5::kFileSignature) == 0, "checkpoint '", name,
                "' is not an HDF5 file (", bytes.size(), " bytes, no HDF5 signature)");
  std::optional<h5::File> file;
  try {
    file.emplace(h5::File::open_image(bytes, name));
  } catch (const Error& e) {
    PROBNAS_FAIL("checkpoint '", name, "' is damaged or truncated (", bytes.size(), " bytes): ", e.what());
  }
  const h5::Group root = file->root();
  PROBNAS_CHECK(root.has("meta"), "checkpoint '", name, "' has no /meta group: not a probnas checkpoint");
  const h5::Group meta = root.open_group("meta");
  PROBNAS_CHECK(meta.has_attr("complete") && meta.attr_int("complete") == 1, "checkpoint '", name,
                "' is incomplete (no /meta@complete: its writing was interrupted)");
  PROBNAS_CHECK(meta.has_attr("schema_version"), "checkpoint '", name, "' has no /meta@schema_version");
  const int64_t version = meta.attr_int("schema_version");
  if (version > kSchemaVersion)
    PROBNAS_INCOMPATIBLE("checkpoint '", name, "' has schema version ", version, ", written by probnas ",
                         meta.has_attr("probnas_version") ? meta.attr_text("probnas_version") : "?",
                         "; this probnas (", PROBNAS_VERSION, ") reads schema version ", kSchemaVersion,
                         ": resume with a newer probnas");
  PROBNAS_CHECK(version >= 1, "checkpoint '", name, "' has an invalid schema version ", version);
  for (const auto& g : top_level_groups())
    PROBNAS_CHECK(root.has(g), "checkpoint '", name, "' lacks the /", g, " group");
  try {
    return read_state(root);  // reads every dataset: Fletcher-32 checksums are verified here
  } catch (const Error& e) {
    PROBNAS_FAIL("checkpoint '", name, "' is damaged: ", e.what());
  }
}

State read_file(const std::string& path) {
  PROBNAS_CHECK(file_exists(path), "checkpoint '", path, "' does not exist");
  return read_image(read_file_bytes(path), path);
}

// ---------------------------------------------------------------------------------------------
// Compatibility

std::string resume_hash(const Config& config) {
  std::ostringstream out;
  out << std::hex << std::setw(16) << std::setfill('0') << config.hash([&](const std::string& key) {
    const OptionSpec* spec = config.table().find(key);
    return spec == nullptr || !spec->resumable;
  });
  return out.str();
}

void check_compatible(const State& state, const std::string& file, const Config& config, const std::string& run_method,
                      const std::string& run_space, const std::set<std::string>& unused) {
  const State& meta = state.group("meta");
  const std::string method = meta.attr_text("method"), space = meta.attr_text("space");
  if (method != run_method || space != run_space) {
    if (method == "train" || run_method == "train")  // probnas train's run folders
      PROBNAS_INCOMPATIBLE("checkpoint '", file, "' is from ",
                           method == "train" ? "the training of a " + space + " genotype" : "a " + method + " search",
                           "; this run ", run_method == "train" ? "trains a " + run_space + " genotype" : "is a " + run_method + " search",
                           ": give another run.dir");
    PROBNAS_INCOMPATIBLE("checkpoint '", file, "' is from a ", method, " search of the ", space, " space; this run is ",
                         run_method, " on ", run_space, ": use the same search.method and search.space, or another run.dir");
  }
  if (meta.has_attr("config_hash") && meta.attr_text("config_hash") == resume_hash(config)) return;
  const auto stored = parse_ini_values(meta.text("config"));
  const auto& current = config.values();
  std::vector<std::string> differ;
  std::string first;
  for (const auto& [key, value] : current) {
    if (config.table().find(key)->resumable || unused.count(key) != 0) continue;
    auto it = stored.find(key);
    if (it == stored.end()) {
      if (config.is_default(key)) continue;  // an option newer than the checkpoint, left at its default
      if (differ.empty()) first = key + " absent (its default), this run has " + key + " = " + value;
      differ.push_back(key);
    } else if (it->second != value) {
      if (differ.empty()) first = key + " = " + it->second + ", this run has " + key + " = " + value;
      differ.push_back(key);
    }
  }
  if (differ.empty()) return;
  std::string more;
  if (differ.size() > 1) {
    more = " (also differing:";
    for (size_t i = 1; i < differ.size(); ++i) more += " " + differ[i];
    more += ")";
  }
  PROBNAS_INCOMPATIBLE("checkpoint '", file, "' was made with ", first, more, "; only ",
                       config.table().resumable_summary(),
                       " may change on resume (--help marks them): use the checkpoint's values or another run.dir");
}

// ---------------------------------------------------------------------------------------------
// The checkpoints/ folder

int64_t step_of(const std::string& file_name) {
  long long step = -1;
  char tail = 0;
  if (file_name.rfind("ckpt-", 0) != 0 || file_name.size() < 9 || file_name.substr(file_name.size() - 3) != ".h5")
    return -1;
  const std::string digits = file_name.substr(5, file_name.size() - 8);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  if (std::sscanf(digits.c_str(), "%lld%c", &step, &tail) != 1) return -1;
  return step;
}

Directory::Directory(std::string dir, SaveOptions options, int64_t keep)
    : dir_(std::move(dir)), options_(options), keep_(std::max<int64_t>(1, keep)) {}

std::vector<std::string> Directory::list() const {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    const int64_t step = step_of(name);
    if (step >= 0 && entry.is_regular_file()) found.emplace_back(step, entry.path().string());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::string Directory::save(const State& state, int64_t step) {
  make_directories(dir_);
  const std::string name = "ckpt-" + std::to_string(step) + ".h5";
  const std::string path = (fs::path(dir_) / name).string();
  bool written = false;
  try {
    write_file(path, state, options_);
    written = true;
    write_file_atomic((fs::path(dir_) / "LATEST").string(), name + "\n");
  } catch (const Error& e) {
    // A full disk, a quota, an I/O error: the new file's temporary is gone, and so is the new file
    // when only LATEST failed; the older files and LATEST are as they were.
    std::error_code ec;
    if (written) fs::remove(path, ec);
    const auto older = list();
    std::string kept = "no older checkpoint";
    for (const auto& f : older)
      if (f != path) {
        kept = "the older checkpoints are intact, newest " + fs::path(f).filename().string();
        break;
      }
    PROBNAS_FAIL("cannot write checkpoint ", name, " in '", dir_, "' (", e.what(), "); ", kept,
                 ": make room and run the same command to resume");
  }
  // Keep the newest `keep` files; drop leftovers of interrupted writes.
  const auto files = list();
  for (size_t i = static_cast<size_t>(keep_); i < files.size(); ++i) {
    if (files[i] == path) continue;
    std::error_code ec;
    fs::remove(files[i], ec);
    if (ec) {
      PROBNAS_LOG(warn) << "cannot remove old checkpoint '" << files[i] << "': " << ec.message();
    }
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string n = entry.path().filename().string();
    if (n.size() > 4 && n.substr(n.size() - 4) == ".tmp" && step_of(n.substr(0, n.size() - 4)) >= 0)
      fs::remove(entry.path(), ec);
  }
  return path;
}

std::optional<Directory::Found> Directory::newest_good() const {
  const auto files = list();
  if (files.empty()) return std::nullopt;
  std::string reasons;
  for (const auto& path : files) {
    try {
      Found f;
      f.bytes = read_file_bytes(path);
      f.state = read_image(f.bytes, path);
      f.path = path;
      return f;
    } catch (const Incompatible&) {
      throw;
    } catch (const Error& e) {
      PROBNAS_LOG(warn) << "skipping checkpoint: " << e.what();
      reasons += std::string("\n  ") + e.what();
    }
  }
  PROBNAS_FAIL("no usable checkpoint in '", dir_, "' (", files.size(), " file", files.size() > 1 ? "s" : "",
               ", none valid):", reasons, "\nmove them away to start afresh, or pass --run.resume <file>");
}

}  // namespace probnas::ckpt

namespace probnas {

const OptionBinding<CheckpointOptions>& checkpoint_options() {
  using O = CheckpointOptions;
  static const auto b =
      OptionBinding<O>()
          .integer("ckpt.interval_steps", &O::interval_steps, 0, 0, 1000000000, "checkpoint every N steps (0: no step trigger)")
          .resumable()
          .real("ckpt.interval_minutes", &O::interval_minutes, 15, 0, 1e7,
                "checkpoint when this many minutes passed since the last one (0: no time trigger)")
          .resumable()
          .boolean("ckpt.epoch_end", &O::epoch_end, true, "checkpoint at the end of every epoch")
          .resumable()
          .integer("ckpt.keep", &O::keep, 3, 1, 1000000, "newest checkpoint files kept in <run.dir>/checkpoints")
          .resumable()
          .boolean("ckpt.file_locking", &O::file_locking, true,
                   "HDF5 file locking (turn off on file systems that refuse POSIX locks)")
          .resumable()
          .integer("ckpt.compress", &O::compress, 0, 0, 9, "gzip level of checkpoint datasets (0: uncompressed, fastest)")
          .resumable();
  return b;
}

}  // namespace probnas

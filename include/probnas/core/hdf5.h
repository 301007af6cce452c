#pragma once
// Small RAII owners over the HDF5 C API (DESIGN: one move-only owner per C handle kind; errors
// become probnas::Error carrying HDF5's own error stack). What checkpoints and image shards need:
// files, groups, datasets holding tensors or text (whole, or rows of them), attributes holding
// integers, reals or text. In core, below data (image shards) and ckpt (checkpoints), which both use it.
#include <hdf5.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace probnas::h5 {

// Owns one HDF5 identifier of any kind and closes it with the matching H5?close.
class Id {
 public:
  Id() = default;
  explicit Id(hid_t id) : id_(id) {}
  Id(Id&& other) noexcept : id_(other.id_) { other.id_ = H5I_INVALID_HID; }
  Id& operator=(Id&& other) noexcept;
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  ~Id() { reset(); }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now; throws (with the error stack) if HDF5 reports a failure. Destructors only log.
  void close();

 private:
  void reset() noexcept;
  hid_t id_ = H5I_INVALID_HID;
};

// HDF5's current error stack as one line ("H5Fopen: unable to open file; file signature not found"),
// cleared afterwards. Empty when the stack is empty.
std::string error_stack();

struct FileOptions {
  bool file_locking = true;  // some parallel file systems refuse POSIX locks: turn off there
};

struct DatasetOptions {
  int compression = 0;      // gzip level 1-9; 0 = none
  bool checksum = true;     // Fletcher-32 on every chunked dataset (verified on read)
  int64_t chunk_bytes = 1 << 20;
  int64_t chunk_rows = 0;   // > 0: chunks of this many rows of the leading dimension (whole rows), for
                            // datasets read a few rows at a time (image shards); 0: by chunk_bytes
};

class Dataset;

// An object that carries attributes: a group or a dataset.
class Object {
 public:
  hid_t id() const { return id_.get(); }
  const std::string& path() const { return path_; }  // "/method/arch" (for messages)
  const std::string& file() const { return file_; }

  void set_attr(const std::string& name, int64_t value);
  void set_attr(const std::string& name, double value);
  void set_attr(const std::string& name, const std::string& value);
  void set_attr(const std::string& name, const char* value) { set_attr(name, std::string(value)); }
  bool has_attr(const std::string& name) const;
  std::vector<std::string> attr_names() const;
  enum class AttrKind { integer, real, text, other };
  AttrKind attr_kind(const std::string& name) const;
  int64_t attr_int(const std::string& name) const;
  double attr_real(const std::string& name) const;
  std::string attr_text(const std::string& name) const;

 protected:
  Object(Id id, std::string file, std::string path) : id_(std::move(id)), file_(std::move(file)), path_(std::move(path)) {}
  std::string where(const std::string& child = "") const;  // "'file.h5' /path/child"
  Id id_;
  std::string file_, path_;
};

class Dataset : public Object {
 public:
  std::vector<int64_t> shape() const;
  bool is_text() const;
  // The tensor stored here, with the dtype in its `dtype` attribute (or the HDF5 type's natural one).
  torch::Tensor read_tensor() const;
  // Text datasets: a scalar string is one element.
  std::vector<std::string> read_strings() const;
  int64_t storage_bytes() const;  // bytes on disk (after compression)
  // Rows [begin, begin + count) of the leading dimension for each range, concatenated in the
  // given order (one H5Dread per range, into place). Dtype as read_tensor's.
  torch::Tensor read_rows(const std::vector<std::pair<int64_t, int64_t>>& ranges) const;

 private:
  friend class Group;
  using Object::Object;
};

class Group : public Object {
 public:
  Group create_group(const std::string& name);
  Group open_group(const std::string& name) const;
  Dataset open_dataset(const std::string& name) const;
  bool has(const std::string& name) const;  // a direct child link of that name
  bool is_group(const std::string& name) const;
  std::vector<std::string> children() const;  // names of direct children, in name order

  // Any dtype LibTorch has except complex; shape preserved (0-d tensors as HDF5 scalars); chunked
  // with Fletcher-32 checksums, optionally gzip-compressed. The dtype goes in a `dtype` attribute.
  Dataset write_tensor(const std::string& name, const torch::Tensor& tensor, const DatasetOptions& options = {});
  // Variable-length UTF-8 strings: one string as a scalar dataset, several as a 1-D dataset.
  Dataset write_text(const std::string& name, const std::string& text);
  Dataset write_strings(const std::string& name, const std::vector<std::string>& strings);

 private:
  friend class File;
  using Object::Object;
};

// The 8 bytes every HDF5 file starts with (at offset 0 for the files probnas writes).
inline const std::string kFileSignature("\x89HDF\r\n\x1a\n", 8);

class File {
 public:
  // Creates (truncating) a file; closes with H5F_CLOSE_STRONG so nothing stays open behind it.
  static File create(const std::string& path, const FileOptions& options = {});
  static File open(const std::string& path, bool writable = false, const FileOptions& options = {});
  // Opens an in-memory copy of a file's bytes (HDF5 core driver; nothing touches the disk).
  static File open_image(const std::string& bytes, const std::string& name);
  // Creates a file in memory (HDF5 core driver; nothing touches the disk); image() gives its bytes.
  // `name` is for messages only.
  static File create_in_memory(const std::string& name);
  static bool is_hdf5(const std::string& path);  // false for missing files too

  Group root() const;
  void flush();
  void close();  // explicit close that reports errors (the destructor only logs them)
  // The whole file's bytes as they are on disk after closing: what create_in_memory built. Closes
  // the file (HDF5 finishes a file only at close; an image taken before would not open).
  std::string image();
  const std::string& path() const { return path_; }

  struct MemoryImage;  // (hdf5.cpp) the in-memory file's bytes, caught at close

 private:
  File(Id id, std::string path) : id_(std::move(id)), path_(std::move(path)) {}
  // Declared first, destroyed last: the file (id_) closes while the buffer's catcher still lives.
  std::shared_ptr<MemoryImage> memory_;  // create_in_memory: where the core driver's buffer is caught at close
  Id id_;
  std::string path_;
};

// Whether the HDF5 library serialises concurrent calls (built --enable-threadsafe). Without it,
// only one thread may call HDF5 at a time.
bool library_is_threadsafe();
// The HDF5 library's version at run time, "1.10.8".
std::string library_version();

// "float32", "int64", ... as in torch; the inverse throws for unknown names.
std::string dtype_name(torch::ScalarType type);
torch::ScalarType dtype_from_name(const std::string& name);

}  // namespace probnas::h5

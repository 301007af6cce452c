#include "probnas/core/hdf5.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "probnas/core/error.h"
#include "probnas/core/log.h"

namespace probnas::h5 {

namespace {

// HDF5 prints its error stack to stderr by default; we turn that off once and put the stack in
// our exceptions instead.
void quiet_library() {
  static const bool done = [] {
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

herr_t collect_error(unsigned n, const H5E_error2_t* e, void* data) {
  auto* parts = static_cast<std::vector<std::string>*>(data);
  std::string text = e->desc ? e->desc : "";
  if (text.empty() && e->func_name) text = e->func_name;
  if (!text.empty() && std::find(parts->begin(), parts->end(), text) == parts->end()) parts->push_back(text);
  (void)n;
  return 0;
}

std::string child_path(const std::string& path, const std::string& child) {
  if (child.empty()) return path;
  return path == "/" ? "/" + child : path + "/" + child;
}

}  // namespace

std::string error_stack() {
  std::vector<std::string> parts;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &parts);
  H5Eclear2(H5E_DEFAULT);
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

// Throws with `what` and HDF5's error stack when an HDF5 call returns a negative value.
#define PROBNAS_H5(call, ...)                                                                  \
  [&] {                                                                                       \
    auto result_ = (call);                                                                     \
    if (result_ < 0) {                                                                         \
      const std::string stack_ = ::probnas::h5::error_stack();                                \
      PROBNAS_FAIL(__VA_ARGS__, stack_.empty() ? std::string() : " (HDF5: " + stack_ + ")");   \
    }                                                                                          \
    return result_;                                                                            \
  }()

Id& Id::operator=(Id&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

namespace {
herr_t close_id(hid_t id) {
  switch (H5Iget_type(id)) {
    case H5I_FILE: return H5Fclose(id);
    case H5I_GROUP: return H5Gclose(id);
    case H5I_DATASET: return H5Dclose(id);
    case H5I_DATASPACE: return H5Sclose(id);
    case H5I_DATATYPE: return H5Tclose(id);
    case H5I_ATTR: return H5Aclose(id);
    case H5I_GENPROP_LST: return H5Pclose(id);
    case H5I_BADID: return 0;  // already closed (e.g. by a strong file close)
    default: return H5Idec_ref(id);
  }
}
}  // namespace

void Id::reset() noexcept {
  if (id_ < 0) return;
  if (close_id(id_) < 0) {
    PROBNAS_LOG(warn) << "HDF5: closing an object failed: " << error_stack();
  }
  id_ = H5I_INVALID_HID;
}

void Id::close() {
  if (id_ < 0) return;
  const hid_t id = id_;
  id_ = H5I_INVALID_HID;
  PROBNAS_H5(close_id(id), "HDF5: closing an object failed");
}

// ---------------------------------------------------------------------------------------------
// Types

std::string library_version() {
  unsigned major = 0, minor = 0, release = 0;
  if (H5get_libversion(&major, &minor, &release) < 0) return "?";
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
}

bool library_is_threadsafe() {
  hbool_t safe = false;
  return H5is_library_threadsafe(&safe) >= 0 && safe;
}

std::string dtype_name(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return "float32";
    case torch::kFloat64: return "float64";
    case torch::kFloat16: return "float16";
    case torch::kBFloat16: return "bfloat16";
    case torch::kInt64: return "int64";
    case torch::kInt32: return "int32";
    case torch::kInt16: return "int16";
    case torch::kInt8: return "int8";
    case torch::kUInt8: return "uint8";
    case torch::kBool: return "bool";
    default: PROBNAS_FAIL("HDF5: tensors of type ", c10::toString(type), " cannot be stored");
  }
}

torch::ScalarType dtype_from_name(const std::string& name) {
  static const std::vector<std::pair<std::string, torch::ScalarType>> table = {
      {"float32", torch::kFloat32}, {"float64", torch::kFloat64}, {"float16", torch::kFloat16},
      {"bfloat16", torch::kBFloat16}, {"int64", torch::kInt64}, {"int32", torch::kInt32},
      {"int16", torch::kInt16}, {"int8", torch::kInt8}, {"uint8", torch::kUInt8}, {"bool", torch::kBool}};
  for (const auto& [n, t] : table)
    if (n == name) return t;
  PROBNAS_FAIL("HDF5: unknown tensor dtype '", name, "'");
}

namespace {

// A file type and a memory type for one torch dtype; `owned` holds the custom float types.
struct TypePair {
  hid_t file = H5I_INVALID_HID, memory = H5I_INVALID_HID;
  Id owned;
};

// IEEE half (as h5py writes it) and bfloat16 as HDF5 custom float types.
Id custom_float(size_t sign_pos, size_t exp_pos, size_t exp_bits, size_t mantissa_bits, size_t bias) {
  Id t(PROBNAS_H5(H5Tcopy(H5T_IEEE_F32LE), "HDF5: cannot make a float type"));
  PROBNAS_H5(H5Tset_fields(t.get(), sign_pos, exp_pos, exp_bits, 0, mantissa_bits), "HDF5: float type fields");
  PROBNAS_H5(H5Tset_size(t.get(), 2), "HDF5: float type size");
  PROBNAS_H5(H5Tset_ebias(t.get(), bias), "HDF5: float type bias");
  return t;
}

TypePair types_of(torch::ScalarType type) {
  TypePair p;
  switch (type) {
    case torch::kFloat32: p.file = H5T_IEEE_F32LE; p.memory = H5T_NATIVE_FLOAT; break;
    case torch::kFloat64: p.file = H5T_IEEE_F64LE; p.memory = H5T_NATIVE_DOUBLE; break;
    case torch::kInt64: p.file = H5T_STD_I64LE; p.memory = H5T_NATIVE_INT64; break;
    case torch::kInt32: p.file = H5T_STD_I32LE; p.memory = H5T_NATIVE_INT32; break;
    case torch::kInt16: p.file = H5T_STD_I16LE; p.memory = H5T_NATIVE_INT16; break;
    case torch::kInt8: p.file = H5T_STD_I8LE; p.memory = H5T_NATIVE_INT8; break;
    case torch::kUInt8:
    case torch::kBool: p.file = H5T_STD_U8LE; p.memory = H5T_NATIVE_UINT8; break;
    case torch::kFloat16: p.owned = custom_float(15, 10, 5, 10, 15); break;
    case torch::kBFloat16: p.owned = custom_float(15, 7, 8, 7, 127); break;
    default: dtype_name(type);  // throws naming the type
  }
  if (p.owned.valid()) p.file = p.memory = p.owned.get();
  return p;
}

// The torch dtype natural for an HDF5 type (files written by other tools have no `dtype` attribute).
torch::ScalarType natural_dtype(hid_t type, const std::string& where) {
  const H5T_class_t cls = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT) {
    if (size == 4) return torch::kFloat32;
    if (size == 8) return torch::kFloat64;
    if (size == 2) return torch::kFloat16;
  } else if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    if (!is_signed && size == 1) return torch::kUInt8;
    if (is_signed) {
      if (size == 1) return torch::kInt8;
      if (size == 2) return torch::kInt16;
      if (size == 4) return torch::kInt32;
      if (size == 8) return torch::kInt64;
    }
  }
  PROBNAS_FAIL("HDF5: ", where, " holds a type (class ", static_cast<int>(cls), ", ", size,
               " bytes) that has no tensor dtype");
}

Id string_type() {
  Id t(PROBNAS_H5(H5Tcopy(H5T_C_S1), "HDF5: cannot make a string type"));
  PROBNAS_H5(H5Tset_size(t.get(), H5T_VARIABLE), "HDF5: string type size");
  PROBNAS_H5(H5Tset_cset(t.get(), H5T_CSET_UTF8), "HDF5: string type charset");
  return t;
}

// Reads `count` strings of `type` (variable or fixed length) with `read(memory_type, buffer)`.
template <typename Read>
std::vector<std::string> read_string_data(hid_t type, hid_t space, size_t count, Read read,
                                          const std::string& where) {
  PROBNAS_CHECK(H5Tget_class(type) == H5T_STRING, "HDF5: ", where, " does not hold text");
  std::vector<std::string> out;
  if (H5Tis_variable_str(type) > 0) {
    Id mem = string_type();
    std::vector<char*> ptrs(count, nullptr);
    PROBNAS_H5(read(mem.get(), ptrs.data()), "HDF5: cannot read text ", where);
    for (char* p : ptrs) out.emplace_back(p ? p : "");
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(mem.get(), space, H5P_DEFAULT, ptrs.data());
#else
    H5Dvlen_reclaim(mem.get(), space, H5P_DEFAULT, ptrs.data());
#endif
  } else {
    const size_t size = H5Tget_size(type);
    Id mem(PROBNAS_H5(H5Tcopy(H5T_C_S1), "HDF5: cannot make a string type"));
    PROBNAS_H5(H5Tset_size(mem.get(), size), "HDF5: string type size");
    std::vector<char> buffer(size * count + 1, '\0');
    PROBNAS_H5(read(mem.get(), buffer.data()), "HDF5: cannot read text ", where);
    for (size_t i = 0; i < count; ++i) {
      const char* p = buffer.data() + i * size;
      out.emplace_back(p, strnlen(p, size));
    }
  }
  return out;
}

Id no_time_tracking(hid_t property_class) {
  Id plist(PROBNAS_H5(H5Pcreate(property_class), "HDF5: cannot create a property list"));
  // Without timestamps the same state gives the same bytes.
  PROBNAS_H5(H5Pset_obj_track_times(plist.get(), false), "HDF5: cannot set time tracking");
  return plist;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Attributes

std::string Object::where(const std::string& child) const { return "'" + file_ + "' " + child_path(path_, child); }

namespace {
void write_attribute(hid_t object, const std::string& name, hid_t file_type, hid_t memory_type, const void* data,
                     const std::string& where) {
  if (H5Aexists(object, name.c_str()) > 0)
    PROBNAS_H5(H5Adelete(object, name.c_str()), "HDF5: cannot replace attribute ", where, "@", name);
  Id space(PROBNAS_H5(H5Screate(H5S_SCALAR), "HDF5: cannot create a dataspace"));
  Id attr(PROBNAS_H5(H5Acreate2(object, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                     "HDF5: cannot create attribute ", where, "@", name));
  PROBNAS_H5(H5Awrite(attr.get(), memory_type, data), "HDF5: cannot write attribute ", where, "@", name);
  attr.close();
}
}  // namespace

void Object::set_attr(const std::string& name, int64_t value) {
  write_attribute(id(), name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, where());
}

void Object::set_attr(const std::string& name, double value) {
  write_attribute(id(), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, where());
}

void Object::set_attr(const std::string& name, const std::string& value) {
  Id type = string_type();
  const char* p = value.c_str();
  write_attribute(id(), name, type.get(), type.get(), &p, where());
}

bool Object::has_attr(const std::string& name) const { return H5Aexists(id(), name.c_str()) > 0; }

namespace {
herr_t collect_attr_name(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

Id open_attribute(hid_t object, const std::string& name, const std::string& where) {
  PROBNAS_CHECK(H5Aexists(object, name.c_str()) > 0, "HDF5: ", where, " has no attribute '", name, "'");
  return Id(PROBNAS_H5(H5Aopen(object, name.c_str(), H5P_DEFAULT), "HDF5: cannot open attribute ", where, "@", name));
}
}  // namespace

std::vector<std::string> Object::attr_names() const {
  std::vector<std::string> names;
  hsize_t index = 0;
  PROBNAS_H5(H5Aiterate2(id(), H5_INDEX_NAME, H5_ITER_INC, &index, collect_attr_name, &names),
             "HDF5: cannot list the attributes of ", where());
  return names;
}

Object::AttrKind Object::attr_kind(const std::string& name) const {
  Id attr = open_attribute(id(), name, where());
  Id type(PROBNAS_H5(H5Aget_type(attr.get()), "HDF5: cannot read the type of ", where(), "@", name));
  switch (H5Tget_class(type.get())) {
    case H5T_INTEGER: return AttrKind::integer;
    case H5T_FLOAT: return AttrKind::real;
    case H5T_STRING: return AttrKind::text;
    default: return AttrKind::other;
  }
}

int64_t Object::attr_int(const std::string& name) const {
  PROBNAS_CHECK(attr_kind(name) == AttrKind::integer, "HDF5: attribute ", where(), "@", name, " is not an integer");
  Id attr = open_attribute(id(), name, where());
  int64_t value = 0;
  PROBNAS_H5(H5Aread(attr.get(), H5T_NATIVE_INT64, &value), "HDF5: cannot read attribute ", where(), "@", name);
  return value;
}

double Object::attr_real(const std::string& name) const {
  const AttrKind kind = attr_kind(name);
  PROBNAS_CHECK(kind == AttrKind::real || kind == AttrKind::integer, "HDF5: attribute ", where(), "@", name,
                " is not a number");
  Id attr = open_attribute(id(), name, where());
  double value = 0;
  PROBNAS_H5(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value), "HDF5: cannot read attribute ", where(), "@", name);
  return value;
}

std::string Object::attr_text(const std::string& name) const {
  Id attr = open_attribute(id(), name, where());
  Id type(PROBNAS_H5(H5Aget_type(attr.get()), "HDF5: cannot read the type of ", where(), "@", name));
  Id space(PROBNAS_H5(H5Aget_space(attr.get()), "HDF5: cannot read the shape of ", where(), "@", name));
  PROBNAS_CHECK(H5Sget_simple_extent_npoints(space.get()) == 1, "HDF5: attribute ", where(), "@", name,
                " is not a single text");
  auto strings = read_string_data(
      type.get(), space.get(), 1, [&](hid_t mem, void* buf) { return H5Aread(attr.get(), mem, buf); },
      where() + "@" + name);
  return strings.front();
}

// ---------------------------------------------------------------------------------------------
// Datasets

std::vector<int64_t> Dataset::shape() const {
  Id space(PROBNAS_H5(H5Dget_space(id()), "HDF5: cannot read the shape of ", where()));
  const int rank = PROBNAS_H5(H5Sget_simple_extent_ndims(space.get()), "HDF5: cannot read the rank of ", where());
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

bool Dataset::is_text() const {
  Id type(PROBNAS_H5(H5Dget_type(id()), "HDF5: cannot read the type of ", where()));
  return H5Tget_class(type.get()) == H5T_STRING;
}

int64_t Dataset::storage_bytes() const { return static_cast<int64_t>(H5Dget_storage_size(id())); }

torch::Tensor Dataset::read_tensor() const {
  Id type(PROBNAS_H5(H5Dget_type(id()), "HDF5: cannot read the type of ", where()));
  const torch::ScalarType dtype =
      has_attr("dtype") ? dtype_from_name(attr_text("dtype")) : natural_dtype(type.get(), where());
  TypePair types = types_of(dtype);
  auto tensor = torch::empty(shape(), torch::TensorOptions().dtype(dtype));
  if (tensor.numel() > 0)
    PROBNAS_H5(H5Dread(id(), types.memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, tensor.data_ptr()),
               "HDF5: cannot read ", where(), " (damaged or truncated file?)");
  return tensor;
}

std::vector<std::string> Dataset::read_strings() const {
  Id type(PROBNAS_H5(H5Dget_type(id()), "HDF5: cannot read the type of ", where()));
  Id space(PROBNAS_H5(H5Dget_space(id()), "HDF5: cannot read the shape of ", where()));
  const auto count = static_cast<size_t>(H5Sget_simple_extent_npoints(space.get()));
  if (count == 0) return {};
  return read_string_data(
      type.get(), space.get(), count,
      [&](hid_t mem, void* buf) { return H5Dread(id(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); }, where());
}

// ---------------------------------------------------------------------------------------------
// Groups

Group Group::create_group(const std::string& name) {
  Id gcpl = no_time_tracking(H5P_GROUP_CREATE);
  Id g(PROBNAS_H5(H5Gcreate2(id(), name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), "HDF5: cannot create group ",
                  where(name)));
  return Group(std::move(g), file_, child_path(path_, name));
}

Group Group::open_group(const std::string& name) const {
  PROBNAS_CHECK(has(name), "HDF5: ", where(name), " is missing");
  Id g(PROBNAS_H5(H5Gopen2(id(), name.c_str(), H5P_DEFAULT), "HDF5: cannot open group ", where(name)));
  return Group(std::move(g), file_, child_path(path_, name));
}

Dataset Group::open_dataset(const std::string& name) const {
  PROBNAS_CHECK(has(name), "HDF5: ", where(name), " is missing");
  Id d(PROBNAS_H5(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), "HDF5: cannot open dataset ", where(name)));
  return Dataset(std::move(d), file_, child_path(path_, name));
}

bool Group::has(const std::string& name) const {
  if (name.empty() || name.find('/') != std::string::npos) return false;
  return H5Lexists(id(), name.c_str(), H5P_DEFAULT) > 0;
}

bool Group::is_group(const std::string& name) const {
  if (!has(name)) return false;
  Id object(PROBNAS_H5(H5Oopen(id(), name.c_str(), H5P_DEFAULT), "HDF5: cannot open ", where(name)));
  return H5Iget_type(object.get()) == H5I_GROUP;
}

namespace {
#if H5_VERSION_GE(1, 12, 0)
herr_t collect_link_name(hid_t, const char* name, const H5L_info2_t*, void* data) {
#else
herr_t collect_link_name(hid_t, const char* name, const H5L_info_t*, void* data) {
#endif
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> Group::children() const {
  // One pass over the links (by-index lookups are linear each: quadratic in big groups).
  std::vector<std::string> names;
  hsize_t index = 0;
#if H5_VERSION_GE(1, 12, 0)
  PROBNAS_H5(H5Literate2(id(), H5_INDEX_NAME, H5_ITER_INC, &index, collect_link_name, &names), "HDF5: cannot list ",
             where());
#else
  PROBNAS_H5(H5Literate(id(), H5_INDEX_NAME, H5_ITER_INC, &index, collect_link_name, &names), "HDF5: cannot list ",
             where());
#endif
  return names;
}

torch::Tensor Dataset::read_rows(const std::vector<std::pair<int64_t, int64_t>>& ranges) const {
  Id type(PROBNAS_H5(H5Dget_type(id()), "HDF5: cannot read the type of ", where()));
  const torch::ScalarType dtype =
      has_attr("dtype") ? dtype_from_name(attr_text("dtype")) : natural_dtype(type.get(), where());
  TypePair types = types_of(dtype);
  std::vector<int64_t> dims = shape();
  PROBNAS_CHECK(!dims.empty(), "HDF5: ", where(), " is a scalar; it has no rows to read");
  const int64_t rows = dims[0];
  int64_t total = 0;
  for (const auto& [begin, count] : ranges) {
    PROBNAS_CHECK(begin >= 0 && count >= 0 && begin + count <= rows, "HDF5: rows [", begin, ", ", begin + count,
                  ") are outside ", where(), " (", rows, " rows): damaged or truncated file?");
    total += count;
  }
  std::vector<int64_t> out_shape = dims;
  out_shape[0] = total;
  auto tensor = torch::empty(out_shape, torch::TensorOptions().dtype(dtype));
  if (total == 0) return tensor;
  // One H5Dread per range, straight into its place in the output. (A union of hyperslabs in one
  // read measured 5x slower for rows of image size: HDF5 then walks the selection element-wise.)
  Id file_space(PROBNAS_H5(H5Dget_space(id()), "HDF5: cannot read the shape of ", where()));
  std::vector<hsize_t> start(dims.size(), 0), count(dims.begin(), dims.end());
  int64_t pos = 0;
  for (const auto& [begin, n] : ranges) {
    if (n == 0) continue;
    start[0] = static_cast<hsize_t>(begin);
    count[0] = static_cast<hsize_t>(n);
    PROBNAS_H5(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
               "HDF5: cannot select rows of ", where());
    Id memory_space(PROBNAS_H5(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr),
                               "HDF5: cannot create a memory space for ", where()));
    PROBNAS_H5(H5Dread(id(), types.memory, memory_space.get(), file_space.get(), H5P_DEFAULT,
                       tensor.narrow(0, pos, n).data_ptr()),
               "HDF5: cannot read rows [", begin, ", ", begin + n, ") of ", where(), " (damaged or truncated file?)");
    pos += n;
  }
  return tensor;
}

Dataset Group::write_tensor(const std::string& name, const torch::Tensor& tensor, const DatasetOptions& options) {
  const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  TypePair types = types_of(t.scalar_type());
  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  Id space(PROBNAS_H5(dims.empty() ? H5Screate(H5S_SCALAR)
                                   : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                      "HDF5: cannot create the dataspace of ", where(name)));
  Id dcpl = no_time_tracking(H5P_DATASET_CREATE);
  if (!dims.empty() && t.numel() > 0) {
    // Chunks of at most chunk_bytes, halving the leading dimensions first.
    std::vector<hsize_t> chunk = dims;
    auto bytes = [&] {
      int64_t n = static_cast<int64_t>(t.element_size());
      for (hsize_t c : chunk) n *= static_cast<int64_t>(c);
      return n;
    };
    if (options.chunk_rows > 0)
      chunk[0] = std::min<hsize_t>(chunk[0], static_cast<hsize_t>(options.chunk_rows));
    else
      for (size_t i = 0; i < chunk.size(); ++i)
        while (bytes() > options.chunk_bytes && chunk[i] > 1) chunk[i] = (chunk[i] + 1) / 2;
    PROBNAS_H5(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), "HDF5: cannot chunk ",
               where(name));
    if (options.compression > 0) {
      PROBNAS_CHECK(H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0, "HDF5: this HDF5 library has no gzip filter; "
                    "turn compression off (ckpt.compress = false)");
      PROBNAS_H5(H5Pset_shuffle(dcpl.get()), "HDF5: cannot set the shuffle filter on ", where(name));
      PROBNAS_H5(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(std::min(options.compression, 9))),
                 "HDF5: cannot set gzip on ", where(name));
    }
    if (options.checksum)
      PROBNAS_H5(H5Pset_fletcher32(dcpl.get()), "HDF5: cannot set checksums on ", where(name));
  }
  Id d(PROBNAS_H5(H5Dcreate2(id(), name.c_str(), types.file, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                  "HDF5: cannot create dataset ", where(name)));
  if (t.numel() > 0)
    PROBNAS_H5(H5Dwrite(d.get(), types.memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()),
               "HDF5: cannot write dataset ", where(name));
  Dataset ds(std::move(d), file_, child_path(path_, name));
  ds.set_attr("dtype", dtype_name(t.scalar_type()));
  return ds;
}

Dataset Group::write_strings(const std::string& name, const std::vector<std::string>& strings) {
  Id type = string_type();
  const hsize_t n = strings.size();
  Id space(PROBNAS_H5(H5Screate_simple(1, &n, nullptr), "HDF5: cannot create the dataspace of ", where(name)));
  Id dcpl = no_time_tracking(H5P_DATASET_CREATE);
  Id d(PROBNAS_H5(H5Dcreate2(id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                  "HDF5: cannot create dataset ", where(name)));
  std::vector<const char*> ptrs;
  for (const auto& s : strings) ptrs.push_back(s.c_str());
  if (!ptrs.empty())
    PROBNAS_H5(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()),
               "HDF5: cannot write dataset ", where(name));
  return Dataset(std::move(d), file_, child_path(path_, name));
}

Dataset Group::write_text(const std::string& name, const std::string& text) {
  Id type = string_type();
  Id space(PROBNAS_H5(H5Screate(H5S_SCALAR), "HDF5: cannot create the dataspace of ", where(name)));
  Id dcpl = no_time_tracking(H5P_DATASET_CREATE);
  Id d(PROBNAS_H5(H5Dcreate2(id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                  "HDF5: cannot create dataset ", where(name)));
  const char* p = text.c_str();
  PROBNAS_H5(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p), "HDF5: cannot write dataset ",
             where(name));
  return Dataset(std::move(d), file_, child_path(path_, name));
}

// ---------------------------------------------------------------------------------------------
// Files

namespace {
Id file_access(const FileOptions& options) {
  Id fapl(PROBNAS_H5(H5Pcreate(H5P_FILE_ACCESS), "HDF5: cannot create a file access list"));
  PROBNAS_H5(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), "HDF5: cannot set the close degree");
#if H5_VERSION_GE(1, 10, 7)
  PROBNAS_H5(H5Pset_file_locking(fapl.get(), options.file_locking, true), "HDF5: cannot set file locking");
#else
  if (!options.file_locking) ::setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1);
#endif
  return fapl;
}
}  // namespace

File File::create(const std::string& path, const FileOptions& options) {
  quiet_library();
  Id fapl = file_access(options);
  // The 1.10 format: single-chunk datasets need no chunk index (smaller files, faster writes).
  PROBNAS_H5(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_LATEST), "HDF5: cannot set the format");
  Id fcpl = no_time_tracking(H5P_FILE_CREATE);
  Id f(PROBNAS_H5(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), "cannot create HDF5 file '", path,
                  "'"));
  return File(std::move(f), path);
}

File File::open(const std::string& path, bool writable, const FileOptions& options) {
  quiet_library();
  Id fapl = file_access(options);
  Id f(PROBNAS_H5(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl.get()),
                  "cannot open HDF5 file '", path, "'"));
  return File(std::move(f), path);
}

File File::open_image(const std::string& bytes, const std::string& name) {
  quiet_library();
  Id fapl(PROBNAS_H5(H5Pcreate(H5P_FILE_ACCESS), "HDF5: cannot create a file access list"));
  PROBNAS_H5(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), "HDF5: cannot set the close degree");
  PROBNAS_H5(H5Pset_fapl_core(fapl.get(), 1 << 20, false), "HDF5: cannot select the in-memory driver");
  // HDF5 copies the buffer; it does not write to it.
  PROBNAS_H5(H5Pset_file_image(fapl.get(), const_cast<char*>(bytes.data()), bytes.size()),
             "HDF5: cannot use the bytes of '", name, "' as a file image");
  // A name no file on disk has: the core driver must not confuse the image with a real file.
  static int64_t counter = 0;
  const std::string internal = "probnas-image-" + std::to_string(++counter) + ".h5";
  Id f(PROBNAS_H5(H5Fopen(internal.c_str(), H5F_ACC_RDONLY, fapl.get()), "cannot open HDF5 file '", name, "'"));
  return File(std::move(f), name);
}

// The core driver's buffer of an in-memory file, caught when HDF5 frees it at close: by then the
// file is finished (superblock status and checksums final), unlike an image taken while it is open.
struct File::MemoryImage {
  void* buffer = nullptr;  // the core driver's buffer (it grows 4 MiB at a time), while HDF5 has it
  size_t allocated = 0;
  void* kept = nullptr;    // that buffer, handed over (not freed) when HDF5 closed the file
  size_t kept_size = 0;
  MemoryImage() = default;
  MemoryImage(const MemoryImage&) = delete;
  MemoryImage& operator=(const MemoryImage&) = delete;
  ~MemoryImage() { std::free(kept); }
};

namespace {
// The file's true size: the end-of-file address of a version 2 or 3 superblock (the 1.10 format
// create_in_memory asks for): signature, version, size of offsets O, size of lengths, flags, then
// base address, extension address and end-of-file address, O bytes each, little-endian. `bytes`
// is the file's start, `file_size` the buffer's size.
size_t superblock_end_of_file(const std::string& bytes, size_t file_size, const std::string& name) {
  PROBNAS_CHECK(bytes.size() >= 12 && bytes.compare(0, 8, kFileSignature) == 0 && (bytes[8] == 2 || bytes[8] == 3),
                "HDF5: the in-memory file '", name, "' has no version 2 or 3 superblock at its start");
  const size_t o = static_cast<unsigned char>(bytes[9]);
  PROBNAS_CHECK(o >= 2 && o <= 8 && bytes.size() >= 12 + 3 * o, "HDF5: the in-memory file '", name,
                "' has an unreadable superblock");
  const auto read = [&](size_t at) {
    uint64_t v = 0;
    for (size_t i = 0; i < o; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
    return v;
  };
  const uint64_t end = read(12 + 2 * o);  // absolute (the base address is 0 for files probnas writes)
  PROBNAS_CHECK(read(12) == 0 && end >= 12 + 3 * o && end <= file_size, "HDF5: the in-memory file '", name,
                "' ends at ", end, ", outside its ", file_size, " bytes");
  return static_cast<size_t>(end);
}
}  // namespace

namespace {
extern "C" {
// No C++ exception may leave these (HDF5's C frames are between them and the caller): they only
// call malloc/realloc/free and store pointers.
void* image_malloc(size_t size, H5FD_file_image_op_t, void* udata) {
  void* buffer = std::malloc(size);
  if (buffer != nullptr && udata != nullptr) {
    auto* image = static_cast<File::MemoryImage*>(udata);
    image->buffer = buffer;
    image->allocated = size;
  }
  return buffer;
}
void* image_memcpy(void* dest, const void* src, size_t size, H5FD_file_image_op_t, void*) {
  return std::memcpy(dest, src, size);
}
void* image_realloc(void* ptr, size_t size, H5FD_file_image_op_t, void* udata) {
  void* grown = std::realloc(ptr, size);
  if (grown != nullptr && udata != nullptr) {
    auto* image = static_cast<File::MemoryImage*>(udata);
    image->buffer = grown;
    image->allocated = size;
  }
  return grown;
}
herr_t image_free(void* ptr, H5FD_file_image_op_t op, void* udata) {
  auto* image = static_cast<File::MemoryImage*>(udata);
  // The file's own buffer at its close is kept (no copy); anything else is freed.
  if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE && image != nullptr && ptr != nullptr && ptr == image->buffer &&
      image->kept == nullptr) {
    image->kept = ptr;
    image->kept_size = image->allocated;
    image->buffer = nullptr;
    return 0;
  }
  std::free(ptr);
  return 0;
}
void* image_udata_copy(void* udata) { return udata; }  // one MemoryImage, owned by the File
herr_t image_udata_free(void*) { return 0; }
}
}  // namespace

File File::create_in_memory(const std::string& name) {
  quiet_library();
  auto memory = std::make_shared<MemoryImage>();
  Id fapl(PROBNAS_H5(H5Pcreate(H5P_FILE_ACCESS), "HDF5: cannot create a file access list"));
  PROBNAS_H5(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), "HDF5: cannot set the close degree");
  // Grown 4 MiB at a time; no backing store: the bytes leave memory only through image().
  PROBNAS_H5(H5Pset_fapl_core(fapl.get(), 4 << 20, false), "HDF5: cannot select the in-memory driver");
  H5FD_file_image_callbacks_t callbacks{image_malloc, image_memcpy,     image_realloc,   image_free,
                                        image_udata_copy, image_udata_free, memory.get()};
  PROBNAS_H5(H5Pset_file_image_callbacks(fapl.get(), &callbacks), "HDF5: cannot set the file image callbacks");
  PROBNAS_H5(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_LATEST), "HDF5: cannot set the format");
  Id fcpl = no_time_tracking(H5P_FILE_CREATE);
  // A name no file can have (under /dev/null, not a folder): HDF5's tentative open of an existing
  // file finds nothing to load.
  static int64_t counter = 0;
  const std::string internal = "/dev/null/probnas-new-image-" + std::to_string(++counter) + ".h5";
  Id f(PROBNAS_H5(H5Fcreate(internal.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()),
                  "cannot create the in-memory HDF5 file for '", name, "'"));
  File file(std::move(f), name);
  file.memory_ = std::move(memory);
  return file;
}

std::string File::image() {
  PROBNAS_CHECK(memory_ != nullptr, "HDF5: '", path_, "' is not an in-memory file");
  close();
  PROBNAS_CHECK(memory_->kept != nullptr, "HDF5: the in-memory file '", path_, "' was not handed back at close");
  const std::string head(static_cast<const char*>(memory_->kept), std::min<size_t>(memory_->kept_size, 64));
  const size_t size = superblock_end_of_file(head, memory_->kept_size, path_);
  std::string bytes(static_cast<const char*>(memory_->kept), size);
  std::free(memory_->kept);
  memory_->kept = nullptr;
  return bytes;
}

bool File::is_hdf5(const std::string& path) {
  quiet_library();
  const htri_t r = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

Group File::root() const {
  Id g(PROBNAS_H5(H5Gopen2(id_.get(), "/", H5P_DEFAULT), "HDF5: cannot open the root group of '", path_, "'"));
  return Group(std::move(g), path_, "/");
}

void File::flush() { PROBNAS_H5(H5Fflush(id_.get(), H5F_SCOPE_GLOBAL), "HDF5: cannot flush '", path_, "'"); }

void File::close() { id_.close(); }

}  // namespace probnas::h5

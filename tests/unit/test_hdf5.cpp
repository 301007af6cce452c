// Unit tests of the HDF5 layer (ckpt/hdf5.h): bitwise tensor round trips for every supported dtype
// and shape, chunking, compression, checksums, text, attributes, in-memory images and error messages.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "probnas/core/hdf5.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "test_support.h"

namespace probnas {
namespace {

using test::error_of;
using test::TempDir;

// ---------------------------------------------------------------------------------------------
// Helpers

// Same dtype, same shape, same bytes (so -0.0 vs 0.0 and NaN payloads count).
void expect_same_bytes(const torch::Tensor& expected, const torch::Tensor& actual, const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(actual.scalar_type(), expected.scalar_type());
  ASSERT_EQ(actual.sizes(), expected.sizes());
  const torch::Tensor e = expected.contiguous(), a = actual.contiguous();
  ASSERT_EQ(a.nbytes(), e.nbytes());
  if (e.nbytes() > 0) {
    EXPECT_EQ(std::memcmp(e.data_ptr(), a.data_ptr(), e.nbytes()), 0) << "bytes differ";
  }
}

// torch::equal and (for every dtype; it matters for floats) the same bytes.
void expect_bitwise_equal(const torch::Tensor& expected, const torch::Tensor& actual, const std::string& what) {
  expect_same_bytes(expected, actual, what);
  if (actual.scalar_type() == expected.scalar_type() && actual.sizes() == expected.sizes()) {
    EXPECT_TRUE(torch::equal(expected, actual)) << what << ": torch::equal is false";
  }
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Deterministic values of `dtype` that use much of its range (the extremes of integer types included).
torch::Tensor sample(torch::ScalarType dtype, const std::vector<int64_t>& shape, int64_t salt = 0) {
  const int64_t n = numel_of(shape);
  const auto idx = torch::arange(n, torch::kInt64) + salt;
  torch::Tensor flat;
  if (dtype == torch::kBool) {
    flat = torch::remainder(idx * 7 + 1, 3) == 0;
  } else if (torch::isFloatingType(dtype)) {
    flat = (torch::sin(idx.to(torch::kFloat64) * 1.7 + 0.3) * 1000.0).to(dtype);
  } else {
    flat = torch::remainder(idx * 7919 + 13, 251);  // 0..250
    switch (dtype) {
      case torch::kUInt8: break;
      case torch::kInt8: flat = flat - 125; break;
      case torch::kInt16: flat = (flat - 125) * 200; break;
      case torch::kInt32: flat = (flat - 125) * 17000000; break;
      case torch::kInt64: flat = (flat - 125) * int64_t{70000000000000000}; break;
      default: ADD_FAILURE() << "sample: no rule for " << c10::toString(dtype);
    }
    flat = flat.to(dtype);
    if (n >= 2) {
      auto lo_hi = [&](auto lo, auto hi) {
        flat[0] = static_cast<int64_t>(lo);
        flat[n - 1] = static_cast<int64_t>(hi);
      };
      switch (dtype) {
        case torch::kUInt8: lo_hi(0, 255); break;
        case torch::kInt8: lo_hi(INT8_MIN, INT8_MAX); break;
        case torch::kInt16: lo_hi(INT16_MIN, INT16_MAX); break;
        case torch::kInt32: lo_hi(INT32_MIN, INT32_MAX); break;
        case torch::kInt64: lo_hi(INT64_MIN, INT64_MAX); break;
        default: break;
      }
    }
  }
  return flat.reshape(shape);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "{";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "}";
}

// Storage properties read straight from the HDF5 C API.
struct Layout {
  bool chunked = false;
  std::vector<hsize_t> chunk;
  hsize_t chunks = 0;
  bool fletcher32 = false, deflate = false;
};

Layout layout_of(const h5::Dataset& d) {
  Layout out;
  const hid_t dcpl = H5Dget_create_plist(d.id());
  EXPECT_GE(dcpl, 0);
  if (dcpl < 0) return out;
  out.chunked = H5Pget_layout(dcpl) == H5D_CHUNKED;
  if (out.chunked) {
    out.chunk.assign(32, 0);
    const int rank = H5Pget_chunk(dcpl, 32, out.chunk.data());
    out.chunk.resize(rank > 0 ? static_cast<size_t>(rank) : 0);
    const hid_t space = H5Dget_space(d.id());
    EXPECT_GE(H5Dget_num_chunks(d.id(), space, &out.chunks), 0);
    H5Sclose(space);
  }
  unsigned flags = 0;
  size_t nelements = 0;
  out.fletcher32 = H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nelements, nullptr, 0, nullptr, nullptr) >= 0;
  nelements = 0;
  out.deflate = H5Pget_filter_by_id2(dcpl, H5Z_FILTER_DEFLATE, &flags, &nelements, nullptr, 0, nullptr, nullptr) >= 0;
  H5Pclose(dcpl);
  h5::error_stack();  // clear what the lookups of absent filters left behind
  return out;
}

// The dataset's values as HDF5 itself converts them to double: checks that the stored HDF5 type
// describes the bytes (what h5py or h5dump read), not only that the bytes come back.
torch::Tensor read_as_double(const h5::Dataset& d) {
  const std::vector<int64_t> shape = d.shape();
  torch::Tensor out = torch::full(shape, -12345.0, torch::kFloat64);
  if (out.numel() > 0) {
    EXPECT_GE(H5Dread(d.id(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()), 0)
        << "HDF5 cannot convert " << d.path() << " to double";
  }
  return out;
}

// Runs a shell command; returns its exit status and puts stdout+stderr in `output`.
int run_command(const std::string& command, const std::string& output_file, std::string& output) {
  const int status = std::system((command + " > '" + output_file + "' 2>&1").c_str());
  output = file_exists(output_file) ? read_file_bytes(output_file) : "";
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---------------------------------------------------------------------------------------------
// Round trips of every dtype, plain and gzip-compressed

struct DtypeCase {
  torch::ScalarType dtype;
  int compression;
};

void PrintTo(const DtypeCase& c, std::ostream* out) {
  *out << h5::dtype_name(c.dtype) << ", gzip level " << c.compression;
}

class Hdf5RoundTrip : public ::testing::TestWithParam<DtypeCase> {};

TEST_P(Hdf5RoundTrip, EveryShapeIsBitwiseIdentical) {
  const auto [dtype, compression] = GetParam();
  TempDir dir;
  const std::string path = dir.file("t.h5");
  h5::DatasetOptions options;
  options.compression = compression;

  const std::vector<std::vector<int64_t>> shapes = {{}, {0, 3}, {0}, {7}, {2, 3, 4, 5}};
  std::vector<torch::Tensor> written;
  for (size_t i = 0; i < shapes.size(); ++i) written.push_back(sample(dtype, shapes[i], static_cast<int64_t>(i)));
  // Larger than the 1 MiB chunk limit whatever the element size: stored as several chunks.
  const int64_t element = torch::elementSize(dtype);
  const int64_t rows = ((3 << 19) + 257 * element - 1) / (257 * element) + 1;
  const torch::Tensor large = sample(dtype, {rows, 257}, 99);
  ASSERT_GT(large.nbytes(), size_t{1} << 20);

  {
    h5::File f = h5::File::create(path);
    h5::Group root = f.root();
    h5::Group g = root.create_group("g");
    for (size_t i = 0; i < shapes.size(); ++i) g.write_tensor("t" + std::to_string(i), written[i], options);
    g.write_tensor("large", large, options);
    f.close();
  }

  h5::File f = h5::File::open(path);
  const h5::Group g = f.root().open_group("g");
  for (size_t i = 0; i < shapes.size(); ++i) {
    const h5::Dataset d = g.open_dataset("t" + std::to_string(i));
    EXPECT_EQ(d.shape(), shapes[i]);
    EXPECT_FALSE(d.is_text());
    EXPECT_EQ(d.attr_text("dtype"), h5::dtype_name(dtype));
    expect_bitwise_equal(written[i], d.read_tensor(), "shape " + shape_text(shapes[i]));
    EXPECT_TRUE(torch::equal(read_as_double(d), written[i].to(torch::kFloat64)))
        << "HDF5's own reading of " << shape_text(shapes[i]) << " differs";
  }
  const h5::Dataset d = g.open_dataset("large");
  expect_bitwise_equal(large, d.read_tensor(), "large " + shape_text({rows, 257}));

  const Layout layout = layout_of(d);
  ASSERT_TRUE(layout.chunked);
  ASSERT_EQ(layout.chunk.size(), 2u);
  EXPECT_LE(static_cast<int64_t>(layout.chunk[0] * layout.chunk[1]) * element, int64_t{1} << 20);
  EXPECT_GE(layout.chunks, 2u) << "a tensor over 1 MiB must be split into several chunks";
  EXPECT_TRUE(layout.fletcher32);
  EXPECT_EQ(layout.deflate, compression > 0);
  if (compression == 0) {
    EXPECT_GE(d.storage_bytes(), static_cast<int64_t>(large.nbytes()));
  }
}

std::vector<DtypeCase> all_dtype_cases() {
  std::vector<DtypeCase> out;
  for (auto t : {torch::kFloat32, torch::kFloat64, torch::kFloat16, torch::kBFloat16, torch::kInt64, torch::kInt32,
                 torch::kInt16, torch::kInt8, torch::kUInt8, torch::kBool})
    for (int c : {0, 4}) out.push_back({t, c});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Hdf5AllDtypes, Hdf5RoundTrip, ::testing::ValuesIn(all_dtype_cases()),
                         [](const ::testing::TestParamInfo<DtypeCase>& info) {
                           return h5::dtype_name(info.param.dtype) + (info.param.compression ? "_gzip" : "_plain");
                         });

// ---------------------------------------------------------------------------------------------
// Tensors

TEST(Hdf5Tensor, SpecialFloatValuesKeepTheirBits) {
  TempDir dir;
  const std::string path = dir.file("special.h5");
  const float inf = std::numeric_limits<float>::infinity();
  const torch::Tensor finite =
      torch::tensor({0.0f, -0.0f, 1.0f, -1.0f, inf, -inf, 1e-40f, 65504.0f, 3.14159265f, -2.5e-5f});
  const torch::Tensor nan = torch::tensor({std::nanf(""), -std::nanf(""), 1.0f});
  const std::vector<torch::ScalarType> types = {torch::kFloat32, torch::kFloat64, torch::kFloat16, torch::kBFloat16};
  {
    h5::File f = h5::File::create(path);
    h5::Group root = f.root();
    for (auto t : types) {
      root.write_tensor("finite_" + h5::dtype_name(t), finite.to(t));
      root.write_tensor("nan_" + h5::dtype_name(t), nan.to(t));
    }
  }
  h5::File f = h5::File::open(path);
  const h5::Group root = f.root();
  for (auto t : types) {
    const std::string name = h5::dtype_name(t);
    expect_bitwise_equal(finite.to(t), root.open_dataset("finite_" + name).read_tensor(), "finite " + name);
    // HDF5's own conversion agrees: infinities, -0.0 and subnormals are described correctly.
    const torch::Tensor as_double = read_as_double(root.open_dataset("finite_" + name));
    EXPECT_TRUE(torch::equal(as_double, finite.to(t).to(torch::kFloat64))) << name << ": " << as_double;
    EXPECT_TRUE(std::signbit(as_double[1].item<double>())) << name;
    const torch::Tensor back = root.open_dataset("nan_" + name).read_tensor();
    expect_same_bytes(nan.to(t), back, "nan " + name);  // torch::equal is false for NaN by definition
    EXPECT_TRUE(torch::isnan(back[0]).item<bool>()) << name;
    EXPECT_TRUE(std::signbit(back[0].item<double>()) == std::signbit(nan.to(t)[0].item<double>())) << name;
  }
  // -0.0 really is stored as -0.0 (torch::equal alone would accept +0.0).
  EXPECT_TRUE(std::signbit(root.open_dataset("finite_float32").read_tensor()[1].item<float>()));
}

TEST(Hdf5Tensor, ZerosTakeLessStorageCompressed) {
  TempDir dir;
  const torch::Tensor zeros = torch::zeros({512, 1024});  // 2 MiB
  h5::File f = h5::File::create(dir.file("z.h5"));
  h5::Group root = f.root();
  h5::DatasetOptions gzip;
  gzip.compression = 4;
  const h5::Dataset plain = root.write_tensor("plain", zeros);
  const h5::Dataset packed = root.write_tensor("packed", zeros, gzip);
  EXPECT_GE(plain.storage_bytes(), static_cast<int64_t>(zeros.nbytes()));
  EXPECT_GT(packed.storage_bytes(), 0);
  EXPECT_LT(packed.storage_bytes() * 20, plain.storage_bytes())
      << "gzip stored 2 MiB of zeros in " << packed.storage_bytes() << " bytes";
  expect_bitwise_equal(zeros, packed.read_tensor(), "compressed zeros");
}

TEST(Hdf5Tensor, NonContiguousInputIsStoredAsItsValues) {
  TempDir dir;
  const torch::Tensor base = torch::arange(12, torch::kInt32).reshape({3, 4});
  const torch::Tensor transposed = base.t();  // {4, 3}, strides {1, 4}
  ASSERT_FALSE(transposed.is_contiguous());
  const torch::Tensor sliced = torch::arange(20, torch::kFloat64).slice(0, 1, 20, 3);  // 1, 4, 7, ...
  {
    h5::File f = h5::File::create(dir.file("nc.h5"));
    h5::Group root = f.root();
    root.write_tensor("t", transposed);
    root.write_tensor("s", sliced);
  }
  h5::File f = h5::File::open(dir.file("nc.h5"));
  const torch::Tensor back = f.root().open_dataset("t").read_tensor();
  EXPECT_EQ(back.sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(back[0][1].item<int32_t>(), 4);  // base[1][0]
  EXPECT_EQ(back[3][2].item<int32_t>(), 11);
  expect_bitwise_equal(transposed, back, "transposed");
  expect_bitwise_equal(sliced, f.root().open_dataset("s").read_tensor(), "sliced");
}

TEST(Hdf5Tensor, ChecksumsCatchAFlippedByte) {
  TempDir dir;
  const std::string path = dir.file("sum.h5");
  // A distinctive pattern: its bytes occur once in the file, where the dataset's chunk is.
  const torch::Tensor pattern = torch::arange(4096, torch::kFloat32) * 0.37f + 12345.678f;
  const std::string raw(static_cast<const char*>(pattern.data_ptr()), pattern.nbytes());
  for (bool checksum : {true, false}) {
    SCOPED_TRACE(checksum ? "with Fletcher-32" : "without checksums");
    {
      h5::DatasetOptions options;
      options.checksum = checksum;
      h5::File f = h5::File::create(path);
      h5::Group root = f.root();
      root.create_group("g").write_tensor("w", pattern, options);
    }
    {
      h5::File f = h5::File::open(path);
      expect_bitwise_equal(pattern, f.root().open_group("g").open_dataset("w").read_tensor(), "intact");
    }
    std::string bytes = read_file_bytes(path);
    const size_t at = bytes.find(raw);
    ASSERT_NE(at, std::string::npos) << "the tensor's bytes are not in the file";
    ASSERT_EQ(bytes.rfind(raw), at);
    const size_t flip = at + raw.size() / 2 + 1;
    bytes[flip] = static_cast<char>(bytes[flip] ^ 0x5a);
    test::write_file(path, bytes);

    h5::File f = h5::File::open(path);
    const h5::Dataset d = f.root().open_group("g").open_dataset("w");
    if (checksum) {
      const std::string message = error_of([&] { d.read_tensor(); });
      EXPECT_TRUE(contains(message, "/g/w")) << message;
      EXPECT_TRUE(contains(message, "damaged or truncated")) << message;
    } else {
      // The control: without checksums the flipped value is read back silently.
      const torch::Tensor back = d.read_tensor();
      EXPECT_FALSE(torch::equal(back, pattern));
      EXPECT_EQ(torch::ne(back, pattern).sum().item<int64_t>(), 1);
    }
  }
}

TEST(Hdf5Tensor, UnsupportedDtypeIsRefusedByName) {
  TempDir dir;
  h5::File f = h5::File::create(dir.file("c.h5"));
  h5::Group root = f.root();
  const std::string message = error_of([&] { root.write_tensor("c", torch::zeros({2}, torch::kComplexFloat)); });
  EXPECT_TRUE(contains(message, "cannot be stored")) << message;
  EXPECT_TRUE(contains(message, "ComplexFloat")) << message;
  EXPECT_EQ(h5::dtype_from_name("bfloat16"), torch::kBFloat16);
  EXPECT_EQ(h5::dtype_from_name(h5::dtype_name(torch::kBool)), torch::kBool);
  EXPECT_TRUE(contains(error_of([] { h5::dtype_from_name("float8"); }), "'float8'"));
}

// ---------------------------------------------------------------------------------------------
// Attributes

TEST(Hdf5Attributes, RoundTripAndReplace) {
  TempDir dir;
  const std::string path = dir.file("a.h5");
  {
    h5::File f = h5::File::create(path);
    h5::Group root = f.root();
    h5::Group g = root.create_group("g");
    g.set_attr("big", int64_t{-1234567890123456789});
    g.set_attr("third", 1.0 / 3.0);
    g.set_attr("name", "β = ELU(η)+1");
    g.set_attr("empty", std::string());
    g.set_attr("changes", int64_t{1});
    g.set_attr("changes", int64_t{2});  // replaced, same kind
    g.set_attr("kind", int64_t{7});
    g.set_attr("kind", "seven");  // replaced by another kind
    h5::Dataset d = g.write_tensor("x", torch::ones({2}));
    d.set_attr("scale", 0.5);
  }
  h5::File f = h5::File::open(path);
  const h5::Group g = f.root().open_group("g");
  EXPECT_EQ(g.attr_int("big"), int64_t{-1234567890123456789});
  EXPECT_EQ(g.attr_real("third"), 1.0 / 3.0);  // exact: stored as a double
  EXPECT_EQ(g.attr_text("name"), "β = ELU(η)+1");
  EXPECT_EQ(g.attr_text("empty"), "");
  EXPECT_EQ(g.attr_int("changes"), 2);
  EXPECT_EQ(g.attr_text("kind"), "seven");
  EXPECT_EQ(g.attr_real("changes"), 2.0);  // an integer reads as a number too

  EXPECT_EQ(g.attr_kind("big"), h5::Object::AttrKind::integer);
  EXPECT_EQ(g.attr_kind("third"), h5::Object::AttrKind::real);
  EXPECT_EQ(g.attr_kind("name"), h5::Object::AttrKind::text);
  EXPECT_EQ(g.attr_kind("kind"), h5::Object::AttrKind::text);

  EXPECT_TRUE(g.has_attr("big"));
  EXPECT_FALSE(g.has_attr("missing"));
  EXPECT_EQ(g.attr_names(), (std::vector<std::string>{"big", "changes", "empty", "kind", "name", "third"}));

  const h5::Dataset d = g.open_dataset("x");
  EXPECT_EQ(d.attr_real("scale"), 0.5);
  EXPECT_EQ(d.attr_names(), (std::vector<std::string>{"dtype", "scale"}));
}

TEST(Hdf5Attributes, WrongKindAndMissingAttributesAreNamed) {
  TempDir dir;
  h5::File f = h5::File::create(dir.file("a.h5"));
  h5::Group root = f.root();
  h5::Group g = root.create_group("g");
  g.set_attr("label", "text");
  g.set_attr("rate", 0.5);

  const std::string not_int = error_of([&] { g.attr_int("label"); });
  EXPECT_TRUE(contains(not_int, "/g@label")) << not_int;
  EXPECT_TRUE(contains(not_int, "not an integer")) << not_int;
  EXPECT_TRUE(contains(not_int, "a.h5")) << not_int;

  const std::string real_as_int = error_of([&] { g.attr_int("rate"); });
  EXPECT_TRUE(contains(real_as_int, "/g@rate")) << real_as_int;

  const std::string not_number = error_of([&] { g.attr_real("label"); });
  EXPECT_TRUE(contains(not_number, "/g@label")) << not_number;
  EXPECT_TRUE(contains(not_number, "not a number")) << not_number;

  const std::string not_text = error_of([&] { g.attr_text("rate"); });
  EXPECT_TRUE(contains(not_text, "/g@rate")) << not_text;
  EXPECT_TRUE(contains(not_text, "does not hold text")) << not_text;

  const std::string missing = error_of([&] { g.attr_int("absent"); });
  EXPECT_TRUE(contains(missing, "has no attribute 'absent'")) << missing;
  EXPECT_TRUE(contains(missing, "/g")) << missing;
}

// ---------------------------------------------------------------------------------------------
// Text

TEST(Hdf5Text, ScalarsAndListsRoundTrip) {
  TempDir dir;
  const std::string path = dir.file("text.h5");
  const std::string utf8 = "β = ELU(η)+1";
  const std::vector<std::string> lines = {"first line", "", utf8, "{\"json\": [1, 2]}"};
  {
    h5::File f = h5::File::create(path);
    h5::Group root = f.root();
    root.write_text("scalar", utf8);
    root.write_text("empty_string", "");
    root.write_strings("lines", lines);
    root.write_strings("no_lines", {});
    root.write_strings("one_line", {"only"});
  }
  h5::File f = h5::File::open(path);
  const h5::Group root = f.root();
  const h5::Dataset scalar = root.open_dataset("scalar");
  EXPECT_TRUE(scalar.is_text());
  EXPECT_TRUE(scalar.shape().empty());
  EXPECT_EQ(scalar.read_strings(), std::vector<std::string>{utf8});
  EXPECT_EQ(root.open_dataset("empty_string").read_strings(), std::vector<std::string>{""});
  const h5::Dataset list = root.open_dataset("lines");
  EXPECT_TRUE(list.is_text());
  EXPECT_EQ(list.shape(), std::vector<int64_t>{4});
  EXPECT_EQ(list.read_strings(), lines);
  const h5::Dataset none = root.open_dataset("no_lines");
  EXPECT_TRUE(none.is_text());
  EXPECT_EQ(none.shape(), std::vector<int64_t>{0});
  EXPECT_TRUE(none.read_strings().empty());
  EXPECT_EQ(root.open_dataset("one_line").shape(), std::vector<int64_t>{1});
  EXPECT_EQ(root.open_dataset("one_line").read_strings(), std::vector<std::string>{"only"});
}

// ---------------------------------------------------------------------------------------------
// Groups

TEST(Hdf5Group, HasIsGroupAndChildrenInNameOrder) {
  TempDir dir;
  const std::string path = dir.file("g.h5");
  // More than 8 links: HDF5 switches the group to dense (hashed) storage; the order must stay by name.
  const std::vector<std::string> created = {"zeta", "g10", "g2", "alpha", "g1", "Beta", "m", "b", "a_data", "c_text"};
  {
    h5::File f = h5::File::create(path);
    h5::Group root = f.root();
    for (const auto& name : created) {
      if (name == "a_data")
        root.write_tensor(name, torch::ones({1}));
      else if (name == "c_text")
        root.write_text(name, "x");
      else
        root.create_group(name).create_group("inner");
    }
  }
  h5::File f = h5::File::open(path);
  const h5::Group root = f.root();
  EXPECT_EQ(root.children(), (std::vector<std::string>{"Beta", "a_data", "alpha", "b", "c_text", "g1", "g10", "g2",
                                                        "m", "zeta"}));
  EXPECT_EQ(root.open_group("g2").children(), std::vector<std::string>{"inner"});
  EXPECT_TRUE(root.open_group("g2").open_group("inner").children().empty());
  EXPECT_EQ(root.open_group("g2").open_group("inner").path(), "/g2/inner");
  EXPECT_EQ(root.open_dataset("a_data").path(), "/a_data");
  EXPECT_EQ(root.path(), "/");
  EXPECT_EQ(root.file(), path);

  EXPECT_TRUE(root.has("g10"));
  EXPECT_TRUE(root.has("a_data"));
  EXPECT_FALSE(root.has("missing"));
  EXPECT_FALSE(root.has(""));
  EXPECT_FALSE(root.has("g2/inner"));  // direct children only
  EXPECT_FALSE(root.has("inner"));
  EXPECT_TRUE(root.is_group("g10"));
  EXPECT_FALSE(root.is_group("a_data"));
  EXPECT_FALSE(root.is_group("c_text"));
  EXPECT_FALSE(root.is_group("missing"));
}

// ---------------------------------------------------------------------------------------------
// Files and errors

TEST(Hdf5File, MissingFileIsNamed) {
  TempDir dir;
  const std::string path = dir.file("does-not-exist.h5");
  const std::string message = error_of([&] { h5::File::open(path); });
  EXPECT_TRUE(contains(message, path)) << message;
  EXPECT_TRUE(contains(message, "cannot open HDF5 file")) << message;
}

TEST(Hdf5File, IsHdf5) {
  TempDir dir;
  test::write_file(dir.file("notes.txt"), "just some text, long enough to hold a superblock if it were one\n");
  { h5::File::create(dir.file("real.h5")); }
  EXPECT_TRUE(h5::File::is_hdf5(dir.file("real.h5")));
  EXPECT_FALSE(h5::File::is_hdf5(dir.file("notes.txt")));
  EXPECT_FALSE(h5::File::is_hdf5(dir.file("missing.h5")));
  // Whatever is_hdf5 left on the error stack must not leak into later messages.
  EXPECT_EQ(h5::error_stack(), "");
}

TEST(Hdf5File, MissingChildrenAreNamedWithTheirFullPath) {
  TempDir dir;
  const std::string path = dir.file("m.h5");
  h5::File f = h5::File::create(path);
  h5::Group root = f.root();
  h5::Group g = root.create_group("g");
  g.create_group("sub");
  const std::string dataset = error_of([&] { g.open_dataset("missing"); });
  EXPECT_TRUE(contains(dataset, "/g/missing")) << dataset;
  EXPECT_TRUE(contains(dataset, path)) << dataset;
  const std::string group = error_of([&] { g.open_group("sub").open_group("nothing"); });
  EXPECT_TRUE(contains(group, "/g/sub/nothing")) << group;
  const std::string at_root = error_of([&] { root.open_dataset("top"); });
  EXPECT_TRUE(contains(at_root, "' /top")) << at_root;  // not "//top"
  // Creating what exists fails with HDF5's reason and the path.
  const std::string twice = error_of([&] { g.create_group("sub"); });
  EXPECT_TRUE(contains(twice, "/g/sub")) << twice;
}

TEST(Hdf5File, ImageOfTheBytesReadsTheSame) {
  TempDir dir;
  const std::string path = dir.file("img.h5");
  const torch::Tensor a = sample(torch::kFloat32, {3, 5});
  const torch::Tensor b = sample(torch::kBFloat16, {4, 2, 2}, 5);
  const torch::Tensor c = sample(torch::kInt64, {}, 3);
  {
    h5::File f = h5::File::create(path);
    h5::Group root = f.root();
    h5::Group g = root.create_group("g");
    g.write_tensor("a", a);
    h5::DatasetOptions gzip;
    gzip.compression = 4;
    g.write_tensor("b", b, gzip);
    g.create_group("deeper").write_tensor("c", c);
    g.write_text("note", "hello");
    g.set_attr("step", int64_t{42});
  }
  const std::string bytes = read_file_bytes(path);
  // Remove the file: the image must not need it.
  std::filesystem::remove(path);
  h5::File f = h5::File::open_image(bytes, "copy-of-img.h5");
  EXPECT_EQ(f.path(), "copy-of-img.h5");
  const h5::Group g = f.root().open_group("g");
  expect_bitwise_equal(a, g.open_dataset("a").read_tensor(), "a");
  expect_bitwise_equal(b, g.open_dataset("b").read_tensor(), "b");
  expect_bitwise_equal(c, g.open_group("deeper").open_dataset("c").read_tensor(), "c");
  EXPECT_EQ(g.open_dataset("note").read_strings(), std::vector<std::string>{"hello"});
  EXPECT_EQ(g.attr_int("step"), 42);
  const std::string missing = error_of([&] { g.open_dataset("zz"); });
  EXPECT_TRUE(contains(missing, "copy-of-img.h5")) << missing;

  // Two images open at once stay apart.
  h5::File other = h5::File::open_image(bytes, "second");
  EXPECT_EQ(other.root().open_group("g").attr_int("step"), 42);

  const std::string garbage = error_of([] { h5::File::open_image("not an hdf5 file at all", "junk.h5"); });
  EXPECT_TRUE(contains(garbage, "junk.h5")) << garbage;
}

TEST(Hdf5File, H5dumpListsGroupsAndDatasets) {
  std::error_code ec;
  const bool have_h5dump = std::filesystem::exists("/usr/bin/h5dump", ec) || std::system("command -v h5dump >/dev/null 2>&1") == 0;
  if (!have_h5dump) GTEST_SKIP() << "h5dump is not on PATH (install hdf5-tools to run this check)";
  TempDir dir;
  const std::string path = dir.file("dump.h5");
  {
    h5::File f = h5::File::create(path);
    h5::Group root = f.root();
    h5::Group model = root.create_group("model");
    model.create_group("parameters").write_tensor("stem.weight", sample(torch::kFloat32, {4, 3}));
    model.write_tensor("half", sample(torch::kFloat16, {5}));
    model.write_tensor("brain", sample(torch::kBFloat16, {5}));
    model.write_tensor("counts", torch::tensor({11, 22, 33}, torch::kInt32));
    root.create_group("meta").write_text("config", "[run]\nseed = 0\n");
  }
  std::string out;
  ASSERT_EQ(run_command("h5dump -H '" + path + "'", dir.file("h.txt"), out), 0) << out;
  for (const char* expected : {"GROUP \"model\"", "GROUP \"parameters\"", "DATASET \"stem.weight\"",
                               "DATASET \"half\"", "DATASET \"brain\"", "DATASET \"counts\"", "GROUP \"meta\"",
                               "DATASET \"config\"", "ATTRIBUTE \"dtype\""})
    EXPECT_TRUE(contains(out, expected)) << "h5dump -H lacks " << expected << ":\n" << out;
  // The data is readable by the standard tool too (checksums verified by it).
  ASSERT_EQ(run_command("h5dump -d /model/counts '" + path + "'", dir.file("d.txt"), out), 0) << out;
  EXPECT_TRUE(contains(out, "11, 22, 33")) << out;
}

// create_in_memory + image(): the bytes are the finished file, exactly its size (not the core
// driver's 4 MiB-rounded buffer), readable from memory and from disk; a file of several 4 MiB
// increments (repeated reallocations) included.
TEST(Hdf5InMemory, TheImageIsTheFinishedFileAtItsExactSize) {
  TempDir dir;
  torch::manual_seed(3);
  const torch::Tensor big = torch::randn({3, 1000, 1000});  // 12 MB: three reallocations and more
  const torch::Tensor small = torch::arange(10, torch::kInt64);
  h5::File f = h5::File::create_in_memory("mem.h5");
  {
    h5::Group g = f.root().create_group("g");
    g.write_tensor("big", big);
    g.write_tensor("small", small);
    g.set_attr("note", std::string("in memory"));
  }
  const std::string bytes = f.image();
  EXPECT_GT(bytes.size(), 12'000'000u);
  EXPECT_LT(bytes.size(), 12'100'000u);  // the data and a little metadata, not a rounded-up buffer
  EXPECT_NE(bytes.size() % (4u << 20), 0u);
  const h5::File copy = h5::File::open_image(bytes, "copy");
  EXPECT_TRUE(torch::equal(copy.root().open_group("g").open_dataset("big").read_tensor(), big));
  EXPECT_TRUE(torch::equal(copy.root().open_group("g").open_dataset("small").read_tensor(), small));
  // The same bytes on disk open as a normal file.
  const std::string path = dir.file("img.h5");
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const h5::File disk = h5::File::open(path);
  EXPECT_EQ(disk.root().open_group("g").attr_text("note"), "in memory");
  EXPECT_TRUE(torch::equal(disk.root().open_group("g").open_dataset("small").read_tensor(), small));
}

// An in-memory file given up half-built (an exception before image()) is closed and freed quietly,
// and a second one works afterwards.
TEST(Hdf5InMemory, AFileAbandonedBeforeItsImageIsFreedQuietly) {
  try {
    h5::File f = h5::File::create_in_memory("abandoned.h5");
    h5::Group g = f.root().create_group("g");
    g.write_tensor("t", torch::ones({100, 100}));
    throw std::runtime_error("a failure while writing");
  } catch (const std::runtime_error&) {
  }
  h5::File f = h5::File::create_in_memory("next.h5");
  f.root().create_group("h");
  const std::string bytes = f.image();
  EXPECT_TRUE(h5::File::open_image(bytes, "next").root().has("h"));
}

}  // namespace
}  // namespace probnas

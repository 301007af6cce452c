#include "probnas/data/jpeg.h"

#include <torch/torch.h>
#include <turbojpeg.h>

#include <cstring>

#include "probnas/core/error.h"

namespace probnas::jpeg {
namespace {

// One compressor and one decompressor per thread (TurboJPEG handles are not thread-safe).
struct Handles {
  tjhandle decompress = nullptr, compress = nullptr;
  ~Handles() {
    if (decompress) tjDestroy(decompress);
    if (compress) tjDestroy(compress);
  }
};
thread_local Handles handles;

std::string message(tjhandle h) {
  const char* m = tjGetErrorStr2(h);
  return m ? m : "unknown libjpeg-turbo error";
}

// After a failed call a TurboJPEG handle may keep the failed image's state: take its message and
// start the next image with a fresh handle.
std::string fail_and_reset(tjhandle& h) {
  std::string m = message(h);
  tjDestroy(h);
  h = nullptr;
  return m;
}

}  // namespace

torch::Tensor decode(const void* data, size_t size, int channels, const std::string& what) {
  PROBNAS_CHECK(channels == 1 || channels == 3, "internal: JPEG decode to ", channels, " channels");
  if (!handles.decompress) handles.decompress = tjInitDecompress();
  tjhandle h = handles.decompress;
  PROBNAS_CHECK(h != nullptr, "libjpeg-turbo: cannot create a decompressor");
  PROBNAS_CHECK(size > 0, what, ": empty file, not a JPEG image");
  auto* bytes = static_cast<const unsigned char*>(data);
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(h, bytes, static_cast<unsigned long>(size), &width, &height, &subsampling, &colorspace) != 0)
    PROBNAS_FAIL(what, ": not a readable JPEG image (libjpeg-turbo: ", fail_and_reset(handles.decompress), ")");
  PROBNAS_CHECK(width > 0 && height > 0, what, ": JPEG image of size ", width, "x", height);
  auto hwc = torch::empty({height, width, channels}, torch::kUInt8);
  // Warnings (truncated data, corrupt segments) stop the decode too: such an image is skipped, not half-read.
  if (tjDecompress2(h, bytes, static_cast<unsigned long>(size), hwc.data_ptr<uint8_t>(), width, 0, height,
                    channels == 3 ? TJPF_RGB : TJPF_GRAY, TJFLAG_STOPONWARNING | TJFLAG_ACCURATEDCT) != 0)
    PROBNAS_FAIL(what, ": corrupt or unsupported JPEG data (libjpeg-turbo: ", fail_and_reset(handles.decompress), ")");
  return hwc.permute({2, 0, 1}).contiguous();
}

std::string encode(const torch::Tensor& image, int quality) {
  PROBNAS_CHECK(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3) && image.scalar_type() == torch::kUInt8,
                "internal: JPEG encode needs uint8 [1|3, H, W], got ", image.sizes());
  if (!handles.compress) handles.compress = tjInitCompress();
  tjhandle h = handles.compress;
  PROBNAS_CHECK(h != nullptr, "libjpeg-turbo: cannot create a compressor");
  const int c = static_cast<int>(image.size(0)), height = static_cast<int>(image.size(1)),
            width = static_cast<int>(image.size(2));
  const torch::Tensor hwc = image.permute({1, 2, 0}).contiguous();
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  const int rc = tjCompress2(h, hwc.data_ptr<uint8_t>(), width, 0, height, c == 3 ? TJPF_RGB : TJPF_GRAY, &out,
                             &out_size, c == 3 ? TJSAMP_420 : TJSAMP_GRAY, quality, TJFLAG_ACCURATEDCT);
  if (rc != 0) {
    const std::string m = fail_and_reset(handles.compress);
    if (out) tjFree(out);
    PROBNAS_FAIL("libjpeg-turbo: cannot encode a ", width, "x", height, " image: ", m);
  }
  std::string bytes(reinterpret_cast<const char*>(out), out_size);
  tjFree(out);
  return bytes;
}

torch::Tensor resize_center_crop(const torch::Tensor& image, int64_t size) {
  const int64_t h = image.size(1), w = image.size(2);
  if (h == size && w == size) return image;
  torch::Tensor x = image;
  const int64_t shorter = std::min(h, w);
  if (shorter != size) {
    const int64_t nh = h == shorter ? size : std::max<int64_t>(size, (h * size + shorter / 2) / shorter);
    const int64_t nw = w == shorter ? size : std::max<int64_t>(size, (w * size + shorter / 2) / shorter);
    x = torch::nn::functional::interpolate(
            image.unsqueeze(0).to(torch::kFloat32),
            torch::nn::functional::InterpolateFuncOptions()
                .size(std::vector<int64_t>{nh, nw})
                .mode(torch::kBilinear)
                .align_corners(false)
                .antialias(shorter > size))
            .squeeze(0)
            .round()
            .clamp(0, 255)
            .to(torch::kUInt8);
  }
  const int64_t top = (x.size(1) - size) / 2, left = (x.size(2) - size) / 2;
  return x.narrow(1, top, size).narrow(2, left, size).contiguous();
}

}  // namespace probnas::jpeg

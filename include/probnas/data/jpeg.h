#pragma once
// JPEG encoding and decoding with libjpeg-turbo's TurboJPEG API (Debian's libturbojpeg), and the
// resize that puts every image of a shard at one stored resolution.
#include <torch/types.h>

#include <string>

namespace probnas::jpeg {

// Decodes JPEG bytes to uint8 [C, H, W] with C = `channels` (3: RGB, 1: grayscale; colour
// conversion as needed). Throws probnas::Error with libjpeg-turbo's message for corrupt or
// unsupported data (`what` names the file or example in the message).
torch::Tensor decode(const void* data, size_t size, int channels, const std::string& what);
// Encodes uint8 [C, H, W] (C = 1 or 3) at `quality` (1-100), 4:2:0 chroma subsampling for colour.
std::string encode(const torch::Tensor& image, int quality);

// Resizes so the shorter side is `size` (antialiased bilinear), then crops the centre size x size.
// uint8 [C, H, W] in and out.
torch::Tensor resize_center_crop(const torch::Tensor& image, int64_t size);

}  // namespace probnas::jpeg

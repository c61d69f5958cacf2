#include "client/featurize/image_file.h"

#include <png.h>
// jpeglib.h needs size_t and FILE declared first.
#include <cstdio>
#include <csetjmp>
#include <jpeglib.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "client/featurize/file_check.h"

namespace mmfuse::featurize {
namespace {

absl::Status CheckSize(const std::string& path, int64_t width, int64_t height) {
  if (width < 1 || height < 1 || width > kMaxImageSide || height > kMaxImageSide ||
      width * height > kMaxImagePixels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image file ", path, ": ", width, "x", height, " is outside 1x1 .. ", kMaxImageSide,
        " per side and ", kMaxImagePixels, " pixels"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RgbImage> DecodePng(const std::string& path, const std::string& bytes) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  auto fail = [&](const char* stage) {
    const std::string message = image.message;
    png_image_free(&image);
    return absl::InvalidArgumentError(
        absl::StrCat("image file ", path, ": corrupt or truncated PNG (", stage, "): ", message));
  };
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) return fail("header");
  absl::Status size = CheckSize(path, image.width, image.height);
  if (!size.ok()) {
    png_image_free(&image);
    return size;
  }
  image.format = PNG_FORMAT_RGBA;
  std::vector<uint8_t> rgba(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, /*background=*/nullptr, rgba.data(), /*row_stride=*/0,
                             /*colormap=*/nullptr)) {
    return fail("pixels");
  }
  RgbImage out;
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  png_image_free(&image);
  const size_t pixels = static_cast<size_t>(out.width) * out.height;
  out.rgb.resize(pixels * 3);
  bool opaque = true;
  for (size_t p = 0; p < pixels; ++p) {
    for (int c = 0; c < 3; ++c) out.rgb[p * 3 + c] = rgba[p * 4 + c];
    opaque &= rgba[p * 4 + 3] == 255;
  }
  if (!opaque) {
    out.alpha.resize(pixels);
    for (size_t p = 0; p < pixels; ++p) out.alpha[p] = rgba[p * 4 + 3];
  }
  return out;
}

// libjpeg reports errors through a callback that must not return: jump back
// to DecodeJpeg with the message.
struct JpegError {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void JpegErrorExit(j_common_ptr info) {
  JpegError* error = reinterpret_cast<JpegError*>(info->err);
  (*info->err->format_message)(info, error->message);
  std::longjmp(error->jump, 1);
}

// Warnings (e.g. "Premature end of JPEG file") mean corrupt data that libjpeg
// would paper over: remember the first and fail after decoding.
void JpegEmitMessage(j_common_ptr info, int level) {
  JpegError* error = reinterpret_cast<JpegError*>(info->err);
  if (level < 0 && info->err->num_warnings++ == 0) {
    (*info->err->format_message)(info, error->message);
  }
}

absl::StatusOr<RgbImage> DecodeJpeg(const std::string& path, const std::string& bytes) {
  jpeg_decompress_struct info;
  JpegError error;
  error.message[0] = '\0';
  info.err = jpeg_std_error(&error.manager);
  error.manager.error_exit = JpegErrorExit;
  error.manager.emit_message = JpegEmitMessage;
  // Locals changed after setjmp and read after longjmp must be volatile; the
  // decoded image is only read on the normal path.
  RgbImage out;
  if (setjmp(error.jump) != 0) {
    jpeg_destroy_decompress(&info);
    return absl::InvalidArgumentError(
        absl::StrCat("image file ", path, ": corrupt or truncated JPEG: ", error.message));
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&info, TRUE);
  info.out_color_space = JCS_RGB;
  info.dct_method = JDCT_ISLOW;
  absl::Status size = CheckSize(path, info.image_width, info.image_height);
  if (!size.ok()) {
    jpeg_destroy_decompress(&info);
    return size;
  }
  jpeg_start_decompress(&info);
  const int width = static_cast<int>(info.output_width);
  const int height = static_cast<int>(info.output_height);
  std::vector<uint8_t> row(static_cast<size_t>(width) * info.output_components);
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  while (info.output_scanline < info.output_height) {
    const int y = static_cast<int>(info.output_scanline);
    JSAMPROW rows[1] = {row.data()};
    jpeg_read_scanlines(&info, rows, 1);
    for (int i = 0; i < width * 3; ++i) out.rgb[static_cast<size_t>(y) * width * 3 + i] = row[i];
  }
  jpeg_finish_decompress(&info);
  const long warnings = info.err->num_warnings;
  jpeg_destroy_decompress(&info);
  if (warnings > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("image file ", path, ": corrupt or truncated JPEG: ", error.message));
  }
  return out;
}

}  // namespace

absl::StatusOr<RgbImage> ReadImageFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadMediaFile("image", path);
  if (!bytes.ok()) return bytes.status();
  static constexpr unsigned char kPng[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static constexpr unsigned char kJpeg[] = {0xff, 0xd8, 0xff};
  if (bytes->size() >= sizeof(kPng) && std::memcmp(bytes->data(), kPng, sizeof(kPng)) == 0) {
    return DecodePng(path, *bytes);
  }
  if (bytes->size() >= sizeof(kJpeg) && std::memcmp(bytes->data(), kJpeg, sizeof(kJpeg)) == 0) {
    return DecodeJpeg(path, *bytes);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("image file ", path, ": unsupported format (not a PNG or JPEG signature)"));
}

}  // namespace mmfuse::featurize

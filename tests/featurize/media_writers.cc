#include "tests/featurize/media_writers.h"

#include <png.h>
#include <sndfile.h>
#include <sys/stat.h>
// jpeglib.h needs FILE and size_t declared first.
#include <cstdio>
#include <jpeglib.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
}

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mmfuse::featurize::testing {

std::string TempDir(const std::string& name) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(::testing::TempDir(), "/featurize_",
                                 info != nullptr ? info->name() : "test", "_", name);
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

absl::Status WriteAudio(const std::string& path, const std::vector<float>& interleaved,
                        int sample_rate, int channels, int format) {
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = channels;
  info.format = format != 0 ? format : (SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  if (file == nullptr) return absl::InternalError(absl::StrCat("sf_open: ", sf_strerror(nullptr)));
  const sf_count_t frames = static_cast<sf_count_t>(interleaved.size() / channels);
  const sf_count_t written = sf_writef_float(file, interleaved.data(), frames);
  sf_close(file);
  if (written != frames) return absl::InternalError("short write");
  return absl::OkStatus();
}

std::vector<float> Sine(double hz, int sample_rate, double seconds, double amplitude) {
  std::vector<float> out(static_cast<size_t>(seconds * sample_rate));
  for (size_t n = 0; n < out.size(); ++n) {
    out[n] = static_cast<float>(amplitude * std::sin(2 * M_PI * hz * n / sample_rate));
  }
  return out;
}

absl::Status WritePng(const std::string& path, int width, int height, int channels,
                      const std::vector<uint8_t>& pixels) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = width;
  image.height = height;
  image.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
  if (!png_image_write_to_file(&image, path.c_str(), 0, pixels.data(), 0, nullptr)) {
    return absl::InternalError(absl::StrCat("png write: ", image.message));
  }
  return absl::OkStatus();
}

absl::Status WriteJpeg(const std::string& path, int width, int height,
                       const std::vector<uint8_t>& rgb, int quality) {
  std::FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) return absl::InternalError("cannot open " + path);
  jpeg_compress_struct info;
  jpeg_error_mgr error;
  info.err = jpeg_std_error(&error);
  jpeg_create_compress(&info);
  jpeg_stdio_dest(&info, out);
  info.image_width = width;
  info.image_height = height;
  info.input_components = 3;
  info.in_color_space = JCS_RGB;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, TRUE);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(&rgb[static_cast<size_t>(info.next_scanline) * width * 3]);
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::fclose(out);
  return absl::OkStatus();
}

absl::Status WriteGrayVideo(const std::string& path, int width, int height, int fps,
                            const std::vector<uint8_t>& values) {
  AVFormatContext* format = nullptr;
  if (avformat_alloc_output_context2(&format, nullptr, "matroska", path.c_str()) < 0) {
    return absl::InternalError("no matroska muxer");
  }
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_FFV1);
  if (codec == nullptr) return absl::InternalError("no ffv1 encoder");
  AVStream* stream = avformat_new_stream(format, nullptr);
  AVCodecContext* encoder = avcodec_alloc_context3(codec);
  encoder->width = width;
  encoder->height = height;
  encoder->pix_fmt = AV_PIX_FMT_GRAY8;
  encoder->time_base = AVRational{1, fps};
  encoder->framerate = AVRational{fps, 1};
  if (format->oformat->flags & AVFMT_GLOBALHEADER) encoder->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (avcodec_open2(encoder, codec, nullptr) < 0) return absl::InternalError("open ffv1");
  avcodec_parameters_from_context(stream->codecpar, encoder);
  stream->time_base = encoder->time_base;
  if (avio_open(&format->pb, path.c_str(), AVIO_FLAG_WRITE) < 0) {
    return absl::InternalError("avio_open " + path);
  }
  if (avformat_write_header(format, nullptr) < 0) return absl::InternalError("write header");
  AVPacket* packet = av_packet_alloc();
  auto drain = [&]() {
    while (avcodec_receive_packet(encoder, packet) == 0) {
      av_packet_rescale_ts(packet, encoder->time_base, stream->time_base);
      packet->stream_index = stream->index;
      av_interleaved_write_frame(format, packet);
    }
  };
  AVFrame* frame = av_frame_alloc();
  frame->format = AV_PIX_FMT_GRAY8;
  frame->width = width;
  frame->height = height;
  av_frame_get_buffer(frame, 0);
  for (size_t i = 0; i < values.size(); ++i) {
    av_frame_make_writable(frame);
    for (int y = 0; y < height; ++y) std::memset(frame->data[0] + y * frame->linesize[0], values[i], width);
    frame->pts = static_cast<int64_t>(i);
    avcodec_send_frame(encoder, frame);
    drain();
  }
  if (!values.empty()) {
    avcodec_send_frame(encoder, nullptr);
    drain();
  }
  av_write_trailer(format);
  av_frame_free(&frame);
  av_packet_free(&packet);
  avcodec_free_context(&encoder);
  avio_closep(&format->pb);
  avformat_free_context(format);
  return absl::OkStatus();
}

absl::Status WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  return out ? absl::OkStatus() : absl::InternalError("cannot write " + path);
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace mmfuse::featurize::testing

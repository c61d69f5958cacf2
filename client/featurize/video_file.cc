#include "client/featurize/video_file.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>
}

#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "client/featurize/file_check.h"

namespace mmfuse::featurize {
namespace {

std::string AvError(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, text, sizeof(text));
  return text;
}

struct FormatCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct CodecCloser {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameCloser {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketCloser {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsCloser {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

// Decodes and samples; one instance per file.
class Sampler {
 public:
  Sampler(std::string path, double frame_rate, int max_frames, const FrameSink& sink)
      : path_(std::move(path)), frame_rate_(frame_rate), max_frames_(max_frames), sink_(sink) {}

  absl::StatusOr<int> Run() {
    absl::StatusOr<int64_t> size = CheckMediaFile("video", path_);
    if (!size.ok()) return size.status();
    // FFmpeg logs to stderr by default; errors reach the caller as statuses.
    av_log_set_level(AV_LOG_QUIET);
    AVFormatContext* raw_format = nullptr;
    int rc = avformat_open_input(&raw_format, path_.c_str(), nullptr, nullptr);
    if (rc == AVERROR_EOF) return NoFrames();
    if (rc < 0) return Error("cannot open as a media container (not a video, corrupt or truncated)", rc);
    format_.reset(raw_format);
    rc = avformat_find_stream_info(format_.get(), nullptr);
    if (rc == AVERROR_EOF) return NoFrames();
    if (rc < 0) return Error("cannot read stream info", rc);
    const AVCodec* codec = nullptr;
    stream_ = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream_ < 0 || codec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("video file ", path_, ": no decodable video stream"));
    }
    time_base_ = av_q2d(format_->streams[stream_]->time_base);
    codec_.reset(avcodec_alloc_context3(codec));
    rc = avcodec_parameters_to_context(codec_.get(), format_->streams[stream_]->codecpar);
    if (rc < 0) return Error("bad codec parameters", rc);
    codec_->thread_count = 1;  // Deterministic and polite on shared cores.
    rc = avcodec_open2(codec_.get(), codec, nullptr);
    if (rc < 0) return Error(absl::StrCat("cannot open the ", codec->name, " decoder"), rc);

    std::unique_ptr<AVPacket, PacketCloser> packet(av_packet_alloc());
    frame_.reset(av_frame_alloc());
    bool done = false;
    while (!done && kept_ < max_frames_) {
      rc = av_read_frame(format_.get(), packet.get());
      if (rc == AVERROR_EOF) break;
      if (rc < 0) {
        last_error_ = AvError(rc);
        break;  // Truncated container: keep what decoded.
      }
      if (packet->stream_index == stream_) {
        rc = avcodec_send_packet(codec_.get(), packet.get());
        if (rc < 0) last_error_ = AvError(rc);  // Corrupt packet: skip it.
        absl::Status drained = Drain(&done);
        if (!drained.ok()) return drained;
      }
      av_packet_unref(packet.get());
    }
    if (!done && kept_ < max_frames_) {
      avcodec_send_packet(codec_.get(), nullptr);  // Flush delayed frames.
      absl::Status drained = Drain(&done);
      if (!drained.ok()) return drained;
    }
    if (kept_ == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("video file ", path_, ": no frames decoded",
                       last_error_.empty() ? "" : absl::StrCat(" (", last_error_, ")")));
    }
    return kept_;
  }

 private:
  absl::Status Error(const std::string& what, int code) {
    return absl::InvalidArgumentError(
        absl::StrCat("video file ", path_, ": ", what, ": ", AvError(code)));
  }

  absl::Status NoFrames() {
    return absl::InvalidArgumentError(absl::StrCat(
        "video file ", path_, ": no frames decoded (the file ends before any: empty or truncated)"));
  }

  absl::Status Drain(bool* done) {
    while (kept_ < max_frames_) {
      const int rc = avcodec_receive_frame(codec_.get(), frame_.get());
      if (rc == AVERROR(EAGAIN)) return absl::OkStatus();
      if (rc == AVERROR_EOF) {
        *done = true;
        return absl::OkStatus();
      }
      if (rc < 0) {
        last_error_ = AvError(rc);
        return absl::OkStatus();
      }
      absl::Status kept = MaybeKeep();
      av_frame_unref(frame_.get());
      if (!kept.ok()) return kept;
    }
    *done = true;
    return absl::OkStatus();
  }

  absl::Status MaybeKeep() {
    const int64_t pts = frame_->best_effort_timestamp;
    // Without timestamps, frames are spaced at the stream's nominal rate
    // (25 fps when it is unknown).
    double t;
    if (pts != AV_NOPTS_VALUE) {
      t = pts * time_base_;
    } else {
      const AVRational rate = format_->streams[stream_]->avg_frame_rate;
      t = decoded_ / (rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 25.0);
    }
    ++decoded_;
    if (!have_start_) {
      start_ = t;
      have_start_ = true;
    }
    t -= start_;
    if (t + 1e-9 < next_slot_ / frame_rate_) return absl::OkStatus();
    next_slot_ = static_cast<int64_t>(std::floor(t * frame_rate_ + 1e-9)) + 1;
    return Convert();
  }

  absl::Status Convert() {
    const int width = frame_->width, height = frame_->height;
    if (width < 1 || height < 1 || width > kMaxImageSide || height > kMaxImageSide) {
      return absl::InvalidArgumentError(absl::StrCat("video file ", path_, ": frame size ", width,
                                                     "x", height, " is outside 1x1 .. ",
                                                     kMaxImageSide, " per side"));
    }
    sws_.reset(sws_getCachedContext(sws_.release(), width, height,
                                    static_cast<AVPixelFormat>(frame_->format), width, height,
                                    AV_PIX_FMT_RGB24, SWS_BILINEAR | SWS_ACCURATE_RND, nullptr,
                                    nullptr, nullptr));
    if (sws_ == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "video file ", path_, ": cannot convert pixel format ",
          av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame_->format)), " to RGB"));
    }
    image_.width = width;
    image_.height = height;
    image_.rgb.resize(static_cast<size_t>(width) * height * 3);
    uint8_t* planes[4] = {image_.rgb.data(), nullptr, nullptr, nullptr};
    int strides[4] = {width * 3, 0, 0, 0};
    sws_scale(sws_.get(), frame_->data, frame_->linesize, 0, height, planes, strides);
    ++kept_;
    return sink_(image_);
  }

  const std::string path_;
  const double frame_rate_;
  const int max_frames_;
  std::unique_ptr<AVFormatContext, FormatCloser> format_;
  std::unique_ptr<AVCodecContext, CodecCloser> codec_;
  std::unique_ptr<AVFrame, FrameCloser> frame_;
  std::unique_ptr<SwsContext, SwsCloser> sws_;
  int stream_ = -1;
  double time_base_ = 0;
  int64_t decoded_ = 0;
  bool have_start_ = false;
  double start_ = 0;
  int64_t next_slot_ = 0;
  std::string last_error_;
  const FrameSink& sink_;
  RgbImage image_;  // The frame passed to sink_, reused.
  int kept_ = 0;
};

}  // namespace

absl::StatusOr<int> ReadVideoFrames(const std::string& path, double frame_rate, int max_frames,
                                    const FrameSink& sink) {
  if (!(frame_rate > 0) || max_frames < 1) {
    return absl::InvalidArgumentError(absl::StrCat("video file ", path, ": frame_rate=", frame_rate,
                                                   " and max_frames=", max_frames,
                                                   " must be > 0 and >= 1"));
  }
  return Sampler(path, frame_rate, max_frames, sink).Run();
}

}  // namespace mmfuse::featurize

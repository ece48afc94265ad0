// `tfm report` and `tfm attention` pages as a real browser shows them: headless Chromium (Debian's
// `chromium`) renders the page; a script the test adds (the page itself has none) records where each
// chart landed; a screenshot, decoded here (zlib + PNG filters), must show each line chart's series colour
// inside its box, and every attention heatmap dark cells inside its box. Skipped where Chromium is not
// installed (CI installs it).
#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "cli_runner.h"
#include "io/atomic_file.h"
#include "test_support.h"

namespace tfm {
namespace {

using test::CliResult;
using test::run_cli;
namespace fs = std::filesystem;

constexpr int kWidth = 1280, kHeight = 3000;

std::string chromium() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (fs::exists(path)) return path;
  return "";
}

std::string run(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>/dev/null").c_str(), "r");
  if (!p) return out;
  std::array<char, 65536> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  pclose(p);
  return out;
}

std::string browser(const std::string& args) {
  return run(chromium() +
             " --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 " +
             "--window-size=" + std::to_string(kWidth) + "," + std::to_string(kHeight) + " " + args);
}

struct Image {
  int width = 0, height = 0;
  std::vector<std::array<uint8_t, 3>> rgb;
  const std::array<uint8_t, 3>& at(int x, int y) const { return rgb[size_t(y) * size_t(width) + size_t(x)]; }
};

uint32_t be32(const std::string& s, size_t at) {
  return uint32_t(uint8_t(s[at])) << 24 | uint32_t(uint8_t(s[at + 1])) << 16 |
         uint32_t(uint8_t(s[at + 2])) << 8 | uint32_t(uint8_t(s[at + 3]));
}

// An 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes).
Image decode_png(const std::string& png) {
  Image img;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::string idat;
  int channels = 0;
  for (size_t at = 8; at + 8 <= png.size();) {
    const uint32_t length = be32(png, at);
    const std::string type = png.substr(at + 4, 4);
    if (type == "IHDR") {
      img.width = int(be32(png, at + 8));
      img.height = int(be32(png, at + 12));
      EXPECT_EQ(png[at + 16], 8) << "bit depth";
      const int colour = png[at + 17];
      EXPECT_TRUE(colour == 2 || colour == 6) << "colour type " << colour;
      channels = colour == 6 ? 4 : 3;
      EXPECT_EQ(png[at + 20], 0) << "interlaced";
    } else if (type == "IDAT") {
      idat += png.substr(at + 8, length);
    }
    at += 12 + length;
  }
  const size_t stride = size_t(img.width) * size_t(channels);
  std::vector<uint8_t> raw((stride + 1) * size_t(img.height));
  uLongf size = uLongf(raw.size());
  EXPECT_EQ(uncompress(raw.data(), &size, reinterpret_cast<const Bytef*>(idat.data()), uLong(idat.size())),
            Z_OK);
  std::vector<uint8_t> previous(stride, 0), line(stride);
  img.rgb.resize(size_t(img.width) * size_t(img.height));
  for (int y = 0; y < img.height; ++y) {
    const uint8_t filter = raw[size_t(y) * (stride + 1)];
    const uint8_t* in = &raw[size_t(y) * (stride + 1) + 1];
    for (size_t i = 0; i < stride; ++i) {
      const int a = i >= size_t(channels) ? line[i - size_t(channels)] : 0, b = previous[i],
                c = i >= size_t(channels) ? previous[i - size_t(channels)] : 0;
      int predicted = 0;
      switch (filter) {
        case 1:
          predicted = a;
          break;
        case 2:
          predicted = b;
          break;
        case 3:
          predicted = (a + b) / 2;
          break;
        case 4: {  // Paeth
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          break;
      }
      line[i] = uint8_t(in[i] + predicted);
    }
    for (int x = 0; x < img.width; ++x)
      img.rgb[size_t(y) * size_t(img.width) + size_t(x)] = {
          line[size_t(x * channels)], line[size_t(x * channels + 1)], line[size_t(x * channels + 2)]};
    previous = line;
  }
  return img;
}

struct Box {
  std::string label;
  int x, y, w, h;
};

// Renders `html` (a copy with a script that stamps every svg.chart with its box) and screenshots it.
std::pair<std::vector<Box>, Image> render(const std::string& html_path, const std::string& dir) {
  std::string html = io::read_file(html_path);
  const std::string script =
      "<script>window.addEventListener('load', () => { for (const e of "
      "document.querySelectorAll('svg.chart')) "
      "{ const r = e.getBoundingClientRect(); e.setAttribute('data-box', [r.left + scrollX, r.top + scrollY, "
      "r.width, r.height].map(Math.round).join(',')); } });</script>\n";
  html.insert(html.rfind("</body>"), script);
  const std::string page = dir + "/probe.html", shot = dir + "/shot.png";
  std::ofstream(page) << html;
  const std::string dom = browser("--virtual-time-budget=3000 --dump-dom file://" + page);
  std::vector<Box> boxes;
  const std::regex svg(
      R"re(<svg class="chart"[^>]*aria-label="([^"]*)"[^>]*data-box="(\d+),(\d+),(\d+),(\d+)")re");
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), svg); it != std::sregex_iterator(); ++it)
    boxes.push_back(
        {(*it)[1], std::stoi((*it)[2]), std::stoi((*it)[3]), std::stoi((*it)[4]), std::stoi((*it)[5])});
  browser("--screenshot=" + shot + " file://" + page);
  return {boxes, decode_png(io::read_file(shot))};
}

// Pixels inside `b` within `tolerance` of `colour` in every channel.
int pixels_near(const Image& img, const Box& b, std::array<int, 3> colour, int tolerance) {
  int n = 0;
  for (int y = b.y; y < b.y + b.h && y < img.height; ++y)
    for (int x = b.x; x < b.x + b.w && x < img.width; ++x) {
      const auto& p = img.at(x, y);
      if (std::abs(p[0] - colour[0]) <= tolerance && std::abs(p[1] - colour[1]) <= tolerance &&
          std::abs(p[2] - colour[2]) <= tolerance)
        ++n;
    }
  return n;
}

TEST(ReportRender, EveryChartDrawsItsCurveInChromium) {
  if (chromium().empty()) GTEST_SKIP() << "chromium is not installed";
  const std::string dir = test::temp_dir("report");
  std::ofstream(dir + "/run.toml")
      << "[model]\nd_model = 32\nheads = 2\nd_ff = 64\nencoder_layers = 1\n"
         "decoder_layers = 1\nmax_len = 40\n[data]\ntrain = \""
      << test::shared_dir() + "/data/bible-en-es/valid.tsv"
      << "\"\nvalid = \"" << test::shared_dir() + "/data/bible-en-es/valid.tsv"
      << "\"\nvalid_max_pairs = 16\nvocab_size = 400\nmax_tokens = 600\n[train]\n"
         "max_steps = 30\nwarmup_steps = 5\nlr = 3e-3\nlog_every = 2\neval_every = 10\n"
         "threads = 2\nout_dir = \""
      << dir << "/run\"\n";
  ASSERT_EQ(run_cli("train --config " + dir + "/run.toml --quiet").code, 0);
  const CliResult r = run_cli("report " + dir + "/run");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto [boxes, img] = render(dir + "/run/report.html", dir);
  ASSERT_EQ(img.width, kWidth);
  std::vector<std::string> labels;
  for (const Box& b : boxes) labels.push_back(b.label);
  EXPECT_EQ(labels, (std::vector<std::string>{"Training loss", "Learning rate", "Throughput",
                                              "Validation loss", "Validation BLEU and chrF"}));
  for (const Box& b : boxes) {
    ASSERT_LE(b.y + b.h, img.height) << b.label << " lies below the screenshot";
    EXPECT_GT(pixels_near(img, b, {0x1f, 0x77, 0xb4}, 40), 60)
        << b.label << ": no curve drawn";  // first series
    EXPECT_GT(pixels_near(img, b, {0x44, 0x44, 0x44}, 60), 30) << b.label << ": no tick labels";
  }
  // chrF, the second series of the BLEU chart, in its own colour.
  EXPECT_GT(pixels_near(img, boxes.back(), {0xd6, 0x27, 0x28}, 40), 30);
}

TEST(ReportRender, AttentionHeatmapsRenderInChromium) {
  if (chromium().empty()) GTEST_SKIP() << "chromium is not installed";
  const std::string dir = test::temp_dir("attention");
  const CliResult r =
      run_cli("attention --model " + test::shared_dir() +
              "/models/mt-en-es --src 'Jesus wept.' --tgt 'Jesús lloró.' --out " + dir + "/a.html");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto [boxes, img] = render(dir + "/a.html", dir);
  ASSERT_EQ(boxes.size(), 3u * 3u * 4u) << "3 kinds x 3 layers x 4 heads";
  for (const Box& b : boxes) {
    if (b.y + b.h > img.height) continue;  // below the screenshot
    // Every row sums to 1 over a handful of keys: some cell is at least 1/5 dark blue.
    EXPECT_GT(pixels_near(img, b, {0x08, 0x30, 0x6b}, 150), 40) << b.label;
  }
  EXPECT_NE(io::read_file(dir + "/a.html").find("Cross-attention, layer 3, head 4"), std::string::npos);
}

}  // namespace
}  // namespace tfm

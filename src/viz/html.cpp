#include "viz/html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace tfm::viz {

namespace {

constexpr const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

// Tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten, about `count` of them.
std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / count, magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * magnitude) {
      step = m * magnitude;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(t);
  return ticks;
}

std::string tick_label(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e4 || a < 1e-3) return fmt::format("{:.1e}", v);
  return fmt::format("{:.4g}", v);
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                       const std::vector<Series>& series, int width, int height) {
  const double left = 64, right = 16, top = 28, bottom = 44;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const Series& s : series)
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  std::string svg = fmt::format(
      "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"#fff\"/>\n<text x=\"{}\" y=\"18\" class=\"title\">{}</text>\n",
      width, height, width, height, escape(title), left, escape(title));
  if (!std::isfinite(x0))
    return svg + fmt::format("<text x=\"{}\" y=\"{}\">no data</text>\n</svg>\n", left, top + 20);
  if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  if (x1 == x0) x1 = x0 + 1;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * plot_w; };
  auto py = [&](double y) { return top + (y1 - y) / (y1 - y0) * plot_h; };
  for (double t : nice_ticks(y0, y1, 5))
    svg += fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" class=\"grid\"/><text x=\"{:.1f}\" "
        "y=\"{:.1f}\" class=\"tick\" text-anchor=\"end\">{}</text>\n",
        left, left + plot_w, py(t), py(t), left - 6, py(t) + 4, tick_label(t));
  for (double t : nice_ticks(x0, x1, 6))
    svg += fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" class=\"grid\"/><text x=\"{:.1f}\" "
        "y=\"{:.1f}\" class=\"tick\" text-anchor=\"middle\">{}</text>\n",
        px(t), px(t), top, top + plot_h, px(t), top + plot_h + 16, tick_label(t));
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" class=\"frame\"/>\n<text x=\"{:.1f}\" y=\"{}\" "
      "class=\"axis\" text-anchor=\"middle\">{}</text>\n<text transform=\"translate(14 {:.1f}) rotate(-90)\" "
      "class=\"axis\" text-anchor=\"middle\">{}</text>\n",
      left, top, plot_w, plot_h, left + plot_w / 2, height - 6, escape(x_label), top + plot_h / 2,
      escape(y_label));
  for (size_t k = 0; k < series.size(); ++k) {
    const char* colour = kColours[k % std::size(kColours)];
    std::string path;
    for (const auto& [x, y] : series[k].points)
      if (std::isfinite(x) && std::isfinite(y))
        path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", px(x), py(y));
    svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n", path, colour);
    if (series[k].points.size() == 1)  // a lone point draws no line
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n",
                         px(series[k].points[0].first), py(series[k].points[0].second), colour);
    if (series.size() > 1)
      svg += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{}\" width=\"12\" height=\"3\" fill=\"{}\"/><text x=\"{:.1f}\" y=\"{}\" "
          "class=\"tick\">{}</text>\n",
          left + plot_w - 150, top + 10 + 14 * double(k), colour, left + plot_w - 134,
          top + 15 + 14 * double(k), escape(series[k].name));
  }
  return svg + "</svg>\n";
}

std::string heatmap(const std::string& title, const std::vector<std::string>& row_labels,
                    const std::vector<std::string>& col_labels, const std::vector<float>& values, int cell) {
  const size_t rows = row_labels.size(), cols = col_labels.size();
  size_t longest_row = 0, longest_col = 0;
  for (const std::string& l : row_labels) longest_row = std::max(longest_row, l.size());
  for (const std::string& l : col_labels) longest_col = std::max(longest_col, l.size());
  const int left = 12 + 7 * int(std::min<size_t>(longest_row, 24)),
            top = 28 + 7 * int(std::min<size_t>(longest_col, 24));
  const int width = left + cell * int(cols) + 8, height = top + cell * int(rows) + 8;
  std::string svg = fmt::format(
      "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"#fff\"/>\n<text x=\"4\" y=\"16\" class=\"title\">{}</text>\n<g fill=\"#08306b\">\n",
      width, height, width, height, escape(title), escape(title));
  for (size_t i = 0; i < rows; ++i)
    for (size_t j = 0; j < cols; ++j) {
      const float v = std::clamp(values[i * cols + j], 0.0f, 1.0f);
      svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill-opacity=\"{:.3f}\"/>\n",
                         left + cell * int(j), top + cell * int(i), cell, cell, 0.04 + 0.96 * v);
    }
  svg += "</g>\n";
  for (size_t i = 0; i < rows; ++i)
    svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"end\">{}</text>\n", left - 4,
                       top + cell * int(i) + cell * 3 / 4, escape(row_labels[i]));
  for (size_t j = 0; j < cols; ++j)
    svg += fmt::format("<text transform=\"translate({} {}) rotate(-60)\" class=\"tick\">{}</text>\n",
                       left + cell * int(j) + cell / 2 + 3, top - 4, escape(col_labels[j]));
  return svg + "</svg>\n";
}

std::string page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + escape(title) +
         "</title>\n<style>\n"
         "body { font-family: sans-serif; margin: 24px; color: #222; background: #fafafa; }\n"
         "h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; } h3 { font-size: 15px; }\n"
         ".charts { display: flex; flex-wrap: wrap; gap: 16px; }\n"
         "svg.chart { border: 1px solid #ddd; background: #fff; }\n"
         "svg .title { font-size: 13px; font-weight: bold; } svg .tick { font-size: 11px; fill: #444; }\n"
         "svg .axis { font-size: 12px; } svg .grid { stroke: #e6e6e6; } svg .frame { fill: none; stroke: "
         "#999; }\n"
         "table { border-collapse: collapse; font-size: 13px; } td, th { border: 1px solid #ddd; padding: "
         "3px 8px; "
         "text-align: left; vertical-align: top; }\n"
         "pre { background: #fff; border: 1px solid #ddd; padding: 8px; font-size: 12px; overflow-x: auto; "
         "}\n"
         "</style>\n</head>\n<body>\n<h1>" +
         escape(title) + "</h1>\n" + body + "</body>\n</html>\n";
}

}  // namespace tfm::viz

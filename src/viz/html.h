// Self-contained HTML pages with inline SVG charts (no script or style sheet from the network): the
// building blocks of `tfm report` and `tfm attention`.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tfm::viz {

// Text made safe inside HTML or SVG elements and attribute values.
std::string escape(std::string_view text);

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), x increasing
};

// A line chart of one or more series on shared axes, with "nice" ticks, axis labels and a legend; each
// series in its own colour. An SVG element of class "chart", `width` x `height` pixels.
std::string line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                       const std::vector<Series>& series, int width = 560, int height = 280);

// A heatmap of rows x cols values in [0, 1] (row-major), darker for larger, with the row labels on the
// left and the column labels above (rotated); `cell` pixels per cell. An SVG element of class "chart".
std::string heatmap(const std::string& title, const std::vector<std::string>& row_labels,
                    const std::vector<std::string>& col_labels, const std::vector<float>& values,
                    int cell = 16);

// A complete HTML document: a small inline style sheet, the title as heading, `body`.
std::string page(const std::string& title, const std::string& body);

}  // namespace tfm::viz

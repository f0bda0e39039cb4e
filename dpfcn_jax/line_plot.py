"""A plain line plot as PNG, drawn with PIL (the project has no plotting dependency)."""
from PIL import Image, ImageDraw

SIZE = (640, 400)
MARGIN = (60, 30, 20, 50)  # left, top, right, bottom
COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189))


def save(path, xs, series, title, x_label, y_label, y_range=(0.0, 1.0), y_scale=100):
  """Writes each of `series` ({label: ys}, ys parallel to `xs`) as a line with points.

  Tick labels show y * y_scale (fractions as percent); the first series is drawn on top.
  """
  image = Image.new('RGB', SIZE, 'white')
  draw = ImageDraw.Draw(image)
  left, top, right, bottom = MARGIN[0], MARGIN[1], SIZE[0] - MARGIN[2], SIZE[1] - MARGIN[3]
  x_lo, x_hi = min(xs), max(xs)
  x_span = (x_hi - x_lo) or 1
  y_lo, y_hi = y_range

  def point(x, y):
    return (left + (x - x_lo) / x_span * (right - left),
            bottom - (min(max(y, y_lo), y_hi) - y_lo) / (y_hi - y_lo) * (bottom - top))

  for i in range(5):
    y = y_lo + i * (y_hi - y_lo) / 4
    _, py = point(x_lo, y)
    draw.line([(left, py), (right, py)], fill=(225, 225, 225))
    draw.text((left - 8, py), f'{y * y_scale:g}', fill='black', anchor='rm')
  for x in _ticks(xs):
    px, _ = point(x, y_lo)
    draw.line([(px, bottom), (px, bottom + 4)], fill='black')
    draw.text((px, bottom + 6), str(x), fill='black', anchor='ma')
  draw.rectangle([left, top, right, bottom], outline='black')
  draw.text(((left + right) / 2, SIZE[1] - 8), x_label, fill='black', anchor='md')
  draw.text((8, top - 8), y_label, fill='black', anchor='ls')
  draw.text(((left + right) / 2, 8), title, fill='black', anchor='ma')
  for j, (label, ys) in reversed(list(enumerate(series.items()))):
    colour = COLOURS[j % len(COLOURS)]
    points = [point(x, y) for x, y in zip(xs, ys)]
    if len(points) > 1:
      draw.line(points, fill=colour, width=3 if j == 0 else 1)
    for px, py in points:
      draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
    draw.text((right - 8, top + 8 + 14 * j), label, fill=colour, anchor='ra')
  image.save(path)


def _ticks(xs, most=8):
  """At most `most` of the x values, evenly spread, always with the first and last."""
  xs = sorted(xs)
  if len(xs) <= most:
    return xs
  return sorted({xs[round(i * (len(xs) - 1) / (most - 1))] for i in range(most)})

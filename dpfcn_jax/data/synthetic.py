"""Synthetic bitemporal landslide scenes: the project's embedded default dataset.

No public pre-event / post-event / mask landslide dataset exists, so this module
renders co-registered VHR aerial RGB pairs (0.5 m/px, like the Lantau Island
photos of the DP-FCN paper, Section III-B) together with the landslide label.

A scene is a vegetated hillside: a fractal height field with a regional slope,
lit by a different sun at each date, covered by tree and shrub crowns that cast
their own shadows. Fresh landslide scars (mask = 1) exist in the post image only:
elongated, downslope-oriented lobes of bare soil whose pixels are vegetation in
the pre image. The scene also holds the pseudo-changes that defeat a
change-magnitude threshold (paper, Sections I and III-B):

  * a seasonal phenology and radiometric change between the dates (yellowing
    grass, exposure, per-band gain / offset / gamma, a smooth gain field, haze);
  * bare rock outcrops, old revegetating scars, roads and footpaths present at
    BOTH dates, as bright as the scars but unlabelled;
  * a different sun azimuth/elevation per date (hillshade, crown shading, cast
    shadows) and cloud shadows on one date;
  * sub-pixel misregistration of the post image (up to +-1 px) and sensor noise.

Everything is vectorised numpy / scipy and deterministic from the seed. Colour
planes are kept channels-first (3, H, W) internally so that numpy's inner loops
run over whole rows.
"""
import dataclasses

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage

from dpfcn_jax.errors import ConfigError

Range = tuple[float, float]
RGB = tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class SceneParams:
  """Every constant of the generator.

  A Range is the (low, high) of a uniform draw; colours are reflectances in
  0..1; `_px` lengths are 0.5 m pixels.
  """
  pixel_m: float = 0.5                      # ground sampling distance of the paper's photos
  min_side: int = 32                        # smallest scene that still holds a scar
  quantile_stride: int = 4                  # smooth fields: quantiles from a sub-grid

  # Terrain.
  main_slope_deg: Range = (12.0, 24.0)      # inclination of the regional hillside
  relief_slope_deg: Range = (10.0, 18.0)    # RMS slope of the spurs and valleys
  terrain_beta: float = 3.0                 # height amplitude spectrum ~ 1/f^beta
  terrain_max_wavelength_px: float = 900.0  # longest spur/valley spacing
  terrain_min_sigma_px: float = 2.0         # finer micro-relief is left to the canopy
  terrain_stretch: float = 2.0              # spurs/valleys this much longer downslope
  flow_sigma_px: float = 12.0               # slope-unit scale of the downslope direction

  # Illumination.
  sun_elevation_deg: Range = (38.0, 65.0)
  sun_azimuth_change_deg: Range = (30.0, 90.0)     # between the two acquisition dates
  sun_elevation_change_deg: Range = (-15.0, 15.0)
  sun_elevation_limits_deg: Range = (25.0, 70.0)
  ambient: Range = (0.3, 0.45)              # skylight share of the light on flat ground
  max_direct: float = 1.5                   # brightest sun-facing slope vs flat ground
  shadow_steps_px: tuple = (1, 2, 3, 5, 7, 10, 14)  # ray-march steps of cast shadows
  shadow_softness_m: float = 0.8            # blocker excess height giving full shadow
  shadow_ambient: float = 0.6               # shadowed pixels keep this share of skylight
  cloud_prob: float = 0.8                   # chance that one date has cloud shadows
  cloud_cover: Range = (0.04, 0.16)         # share of the scene under cloud shadow
  cloud_block: Range = (0.6, 0.9)           # share of direct sunlight a cloud blocks
  cloud_patch_px: float = 400.0
  cloud_sigma_px: float = 16.0
  cloud_edge: float = 0.35                  # width of the penumbra in noise std

  # Vegetation types: forest / shrub / grass shares are clipped affine maps of
  # one smooth field, so grass and forest never touch without shrub between.
  vegetation_patch_px: float = 220.0        # size of forest / shrub / grass patches
  vegetation_patch_sigma_px: float = 8.0    # their finest detail
  vegetation_beta: float = 1.6
  forest_map: Range = (0.5, 0.9)            # forest share = clip(a + b * field)
  grass_map: Range = (-0.6, -1.2)           # grass share = clip(a + b * field)
  forest_shrub_layer: float = 0.3           # shrubs fill gaps under forest at this share
  # Crowns.
  tree_radius_px: Range = (3.5, 7.0)        # crowns 3.5-7 m across
  tree_density: float = 0.014               # tree crowns per pixel in closed forest
  tree_height_m: Range = (4.0, 11.0)        # crown base above ground
  shrub_radius_px: Range = (1.5, 3.0)
  shrub_density: float = 0.06
  shrub_height_m: Range = (0.5, 2.0)
  crown_dome: float = 0.8                   # dome height / crown radius
  crown_blur_px: float = 0.7                # foliage softens the seams between crowns
  understory_m: float = 0.3                 # height of the gaps between crowns
  # Colours and seasons.
  forest_rgb: RGB = (0.15, 0.24, 0.13)
  shrub_rgb: RGB = (0.20, 0.29, 0.16)
  grass_rgb: RGB = (0.26, 0.33, 0.18)
  senescent_rgb: RGB = (0.31, 0.32, 0.17)   # straw-yellow dry grass / shrub
  green_season: Range = (0.0, 0.15)         # yellowing strength at the greener date
  dry_season: Range = (0.45, 0.9)           # ... and at the drier one
  dry_patch_px: float = 300.0
  dry_patch_sigma_px: float = 10.0
  dry_patch_beta: float = 1.5
  dry_map: Range = (0.4, 0.6)               # dryness share = clip(a + b * field)
  forest_dry_resistance: float = 0.7        # evergreen forest yellows this much less
  crown_colour_jitter: float = 0.18         # per-crown relative colour spread
  crown_colour_persistence: float = 0.5     # correlation of crown colour between dates
  crown_tint_rgb: RGB = (1.0, 1.0, 0.8)     # crowns vary mostly in brightness
  gap_darkening: float = 0.35               # inter-crown gaps show dark understory
  grass_grain: float = 0.08                 # tussock contrast in open grass

  # Landslide scars (post date only, labelled).
  slide_fraction: Range = (0.025, 0.07)     # target landslide share of the scene
  slide_area_px: Range = (150.0, 20000.0)   # log-uniform scar area
  slide_aspect: Range = (1.8, 5.5)          # length / width
  slide_fill: float = 0.62                  # scar area / (length * width) of the lobe
  slide_flare: Range = (0.3, 1.0)           # how much wider the toe (or head) is
  slide_toe_wide: float = 0.65              # share of lobes widest at the toe
  slide_bluntness: float = 0.35             # exponent of the rounded head and toe
  slide_bend: Range = (-0.18, 0.18)         # centreline curvature, share of length
  slide_meander: float = 0.08               # centreline wiggle, share of width
  slide_wobble: float = 0.18                # relative width wobble along the lobe
  slide_knots: int = 9                      # control points of wiggle and wobble
  slide_dir_jitter_deg: float = 12.0        # deviation from the steepest descent
  slide_edge_px: Range = (1.0, 3.0)         # amplitude of the irregular outline
  slide_edge_share: float = 0.2             # ... at most this share of the width
  slide_head_candidates: int = 24           # heads are drawn among these, steep first
  slide_max_tries: int = 400
  slide_min_share: float = 0.5              # lobes under this share of the min area are dropped
  slide_overshoot: float = 1.3              # last lobe may exceed the target by this factor
  slide_max_overlap: float = 0.03           # share of a scar allowed on bare ground
  bare_margin_px: int = 2                   # scars keep this far from bare ground
  min_scar_px: int = 60                     # smaller leftover pieces are unlabelled
  slide_depth_m: Range = (1.0, 3.0)         # depletion at the head ...
  toe_deposit: float = 0.4                  # ... and this share of it deposited at the toe
  # Fresh soil: decomposed granite, colluvium, grey debris.
  soil_rgb: tuple = ((0.60, 0.52, 0.39), (0.63, 0.57, 0.42), (0.55, 0.53, 0.48),
                     (0.59, 0.49, 0.36), (0.52, 0.46, 0.37))
  soil_jitter: float = 0.06                 # per-scar relative colour spread
  soil_texture: Range = (0.10, 0.18)        # contrast of clods, rills and mottles
  soil_mix: tuple = (0.6, 0.5, 0.5, 0.6)    # weights of grain, clods, rills, mottles
  rill_period_px: Range = (4.0, 9.0)
  rill_meander: float = 2.5                 # phase wander of the rills (rad per std)
  head_brightening: float = 0.15            # the fresh head scarp is lighter
  toe_start: float = 0.55                   # debris appears past this share of length
  toe_debris: float = 0.35                  # share of the toe under uprooted vegetation
  debris_tint: RGB = (0.55, 0.6, 0.5)
  scarp_sigma_px: float = 0.8               # sharpness of scar and outcrop rims

  # Confusers present at both dates (unlabelled).
  rock_fraction: Range = (0.01, 0.04)
  rock_patch_px: float = 250.0
  rock_sigma_px: float = 2.5
  rock_beta: float = 2.0
  rock_steep_weight: float = 0.7            # outcrops favour steep ground
  rock_rgb: tuple = ((0.57, 0.55, 0.51), (0.61, 0.56, 0.47), (0.50, 0.49, 0.46),
                     (0.59, 0.52, 0.43))
  rock_texture: float = 0.12
  rock_height_m: float = 0.9                # outcrops stand proud of the soil ...
  rock_relief_m: float = 0.6                # ... with blocky relief, shaded by each sun
  rock_joint_width: float = 0.06            # |coarse noise| below this is a joint
  rock_joint_darkening: float = 0.65
  old_scars: tuple = (1, 4)                 # revegetating scars of earlier events
  old_scar_fraction: float = 0.02
  old_scar_area_px: Range = (300.0, 6000.0)
  old_scar_regrowth: Range = (0.1, 0.5)     # share of an old scar grown over again
  regrowth_height: float = 0.3              # young crowns relative to mature ones
  roads: tuple = (0, 2)
  road_width_px: Range = (6.0, 11.0)
  road_rgb: tuple = ((0.55, 0.55, 0.54), (0.59, 0.55, 0.46))
  road_texture: float = 0.04
  road_entry: Range = (0.1, 0.9)            # where along a scene edge roads enter
  road_entry_angle: float = 0.6             # max angle to the edge normal (rad)
  paths: tuple = (1, 4)
  path_width_px: Range = (1.6, 3.2)
  path_rgb: tuple = ((0.60, 0.52, 0.40), (0.57, 0.53, 0.46))
  path_texture: float = 0.08
  track_step_px: float = 0.5
  track_turn: float = 0.03                  # heading noise per step (rad)
  track_smooth: float = 20.0                # steps over which heading changes persist
  bare_jitter: float = 0.05                 # per-surface relative colour spread
  bare_wetness: Range = (0.75, 1.1)         # per-date brightness of bare ground
  fine_sigma_px: float = 0.8                # texture scales: grain ...
  edge_sigma_px: float = 2.0                # ... outlines and clods ...
  coarse_sigma_px: float = 4.0              # ... rills, joints, regrowth

  # Radiometry of each date.
  exposure: Range = (0.8, 1.15)             # overall gain of the brighter date ...
  exposure_step: Range = (1.12, 1.4)        # ... over that of the darker date
  band_gain: float = 0.07                   # per-band relative gain spread (colour cast)
  band_offset: Range = (-0.01, 0.04)
  gamma: Range = (0.6, 0.85)                # camera tone curve of a date
  band_gamma: float = 0.02                  # per-band gamma spread
  gain_field: float = 0.08                  # smooth spatial gain variation (vignetting)
  gain_field_px: float = 800.0
  gain_field_sigma_px: float = 40.0
  haze: Range = (0.0, 0.04)                 # additive path radiance ...
  haze_rgb: RGB = (0.6, 0.8, 1.0)           # ... which is bluish
  misregistration_px: float = 1.0           # max |shift| of the post image per axis
  noise_dn: Range = (1.5, 3.5)              # sensor noise std in 8-bit counts


PARAMS = SceneParams()


# ----------------------------------------------------------------------------
# Random fields.


def _noise(rng, shape, sigma, beta=0.0, max_wavelength=np.inf):
  """Zero-mean, unit-std Gaussian random field, shaped in the Fourier domain.

  The amplitude spectrum is a power law f^-beta (beta = 0: white) cut below
  1 / max_wavelength and rolled off above by a Gaussian blur of `sigma` px. It
  models natural multi-scale variation: terrain, vegetation patches, clouds,
  grain. Smooth fields are drawn on a grid no coarser than sigma / 2 and
  upsampled: as good for them, and much cheaper.
  """
  factor = max(1, int(sigma // 2))
  coarse = shape if factor == 1 else (shape[0] // factor + 2, shape[1] // factor + 2)
  field = _fft_filter(rng.standard_normal(coarse, dtype=np.float32),
                      [_spectrum(coarse, sigma / factor, beta, max_wavelength / factor)])[0]
  if factor > 1:
    field = _upsample(field, shape, factor)
  return _standardise(field)


def _spectrum(shape, sigma, beta, max_wavelength):
  """Amplitude spectrum on the rfft2 grid of `shape` (see `_noise`)."""
  fy = sp_fft.fftfreq(shape[0]).astype(np.float32)[:, None]
  fx = sp_fft.rfftfreq(shape[1]).astype(np.float32)[None, :]
  f2 = fy * fy + fx * fx
  amp = np.exp(np.float32(-2.0 * np.pi ** 2 * sigma ** 2) * f2)
  if beta:
    f_lo = np.float32(1.0 / max_wavelength)
    amp *= (f2 + f_lo * f_lo) ** np.float32(-beta / 2.0)
  amp[0, 0] = 0.0
  return amp


def _fft_filter(image, spectra):
  """Circular convolutions of one image with several filters (one FFT in)."""
  spec = sp_fft.rfft2(image)
  return [sp_fft.irfft2(spec * s, s=image.shape).astype(np.float32, copy=False)
          for s in spectra]


def _upsample(a, shape, factor):
  """Bilinear upsampling of a coarse grid by an integer factor, cropped to shape.

  Works phase by phase on strided slices: no gathers, so it stays cheap.
  """
  for axis, n in enumerate(shape):
    a = np.moveaxis(a, axis, 0)
    out = np.empty((n,) + a.shape[1:], np.float32)
    for j in range(factor):
      m = len(range(j, n, factor))
      w = np.float32(j / factor)
      out[j::factor] = a[:m] * (1 - w) + a[1:m + 1] * w
    a = np.moveaxis(out, 0, axis)
  return a


def _standardise(a):
  a = a - a.mean()
  a /= a.std() + 1e-12
  return a.astype(np.float32, copy=False)


def _quantile(field, q, p):
  """Quantile of a smooth field, read from a sub-grid."""
  return float(np.quantile(field[::p.quantile_stride, ::p.quantile_stride], q))


def _uniform(rng, bounds):
  return float(rng.uniform(*bounds))


def _count(rng, bounds):
  """Integer uniform in [low, high], both included."""
  return int(rng.integers(bounds[0], bounds[1] + 1))


def _colour(rng, palette, jitter):
  """One palette colour (3,) with a relative jitter, mostly of brightness."""
  base = np.asarray(palette[rng.integers(len(palette))], np.float32)
  dev = rng.standard_normal() + 0.3 * rng.standard_normal(3)
  return (base * (1.0 + jitter * dev)).astype(np.float32)


def _shift_edge(a, dy, dx):
  """Integer shift out[y, x] = a[y + dy, x + dx] with edge replication."""
  h, w = a.shape
  pad = max(abs(dy), abs(dx))
  if pad == 0:
    return a
  padded = np.pad(a, pad, mode='edge')
  return padded[pad + dy:pad + dy + h, pad + dx:pad + dx + w]


def _subpixel_shift(img, dy, dx):
  """Bilinear resampling out[:, y, x] = img[:, y - dy, x - dx], |dy|, |dx| <= 1.

  Models residual misregistration of band planes (C, H, W); edges replicate.
  """
  pad = 2
  out = np.pad(img, ((0, 0), (pad, pad), (pad, pad)), mode='edge')
  for axis, d in ((1, dy), (2, dx)):
    n = img.shape[axis]
    k = int(np.floor(-d))
    f = np.float32(-d - k)
    lo = [slice(None)] * 3
    hi = [slice(None)] * 3
    lo[axis] = slice(pad + k, pad + k + n)
    hi[axis] = slice(pad + k + 1, pad + k + 1 + n)
    out = out[tuple(lo)] * (1 - f) + out[tuple(hi)] * f
  return out


@dataclasses.dataclass(frozen=True)
class _Textures:
  """Unit-std noise fields shared by every surface of a scene."""
  fine: np.ndarray    # grain, gravel, tussocks
  edge: np.ndarray    # irregular outlines, clods, rock blocks
  coarse: np.ndarray  # rill meanders, rock joints, regrowth patches


def _textures(rng, shape, p):
  return _Textures(fine=_noise(rng, shape, p.fine_sigma_px),
                   edge=_noise(rng, shape, p.edge_sigma_px),
                   coarse=_noise(rng, shape, p.coarse_sigma_px))


# ----------------------------------------------------------------------------
# Terrain and light.


def _terrain(rng, shape, p):
  """Ground height (m): a tilted hillside with fractal spurs and valleys.

  The relief is stretched along the main slope, as erosion draws spurs and
  valleys downhill. Also returns the height smoothed at the scale of a slope
  unit, whose gradient gives the downslope direction that landslides follow.
  """
  h, w = shape
  azimuth = _uniform(rng, (0.0, 2 * np.pi))
  cos_a, sin_a = float(np.cos(azimuth)), float(np.sin(azimuth))
  tilt = float(np.tan(np.radians(_uniform(rng, p.main_slope_deg))))
  yy = np.arange(h, dtype=np.float32)[:, None] * p.pixel_m
  xx = np.arange(w, dtype=np.float32)[None, :] * p.pixel_m
  ramp = -(cos_a * xx + sin_a * yy) * tilt

  fy = sp_fft.fftfreq(h).astype(np.float32)[:, None]
  fx = sp_fft.rfftfreq(w).astype(np.float32)[None, :]
  along = (fx * cos_a + fy * sin_a) * np.float32(p.terrain_stretch)
  across = fy * cos_a - fx * sin_a
  f2 = along * along + across * across
  f_lo = np.float32(1.0 / p.terrain_max_wavelength_px)
  hills = ((f2 + f_lo * f_lo) ** np.float32(-p.terrain_beta / 2)
           * np.exp(np.float32(-2 * np.pi ** 2 * p.terrain_min_sigma_px ** 2) * f2))
  hills[0, 0] = 0.0
  blur = np.exp(np.float32(-2 * np.pi ** 2 * p.flow_sigma_px ** 2) * (fx * fx + fy * fy))
  rough, smooth = _fft_filter(rng.standard_normal(shape, dtype=np.float32),
                              [hills, hills * blur])
  scale = _slope_scale(rough, _uniform(rng, p.relief_slope_deg), p)
  return ramp + rough * scale, ramp + smooth * scale


def _slope_scale(field, slope_deg, p):
  """Factor giving `field` (heights) an RMS slope of `slope_deg`."""
  gy, gx = np.gradient(field, p.pixel_m)
  rms = np.sqrt(np.mean(gx * gx + gy * gy))
  return np.float32(np.tan(np.radians(slope_deg)) / (rms + 1e-12))


def _downslope(smooth_ground, p):
  """Unit downslope direction (dy, dx) and steepness of the smoothed terrain."""
  gy, gx = np.gradient(smooth_ground, p.pixel_m)
  mag = np.hypot(gx, gy) + 1e-6
  return -gy / mag, -gx / mag, mag


@dataclasses.dataclass(frozen=True)
class _Sun:
  """Sun direction of one acquisition (azimuth in image axes, elevation, rad)."""
  azimuth: float
  elevation: float

  @property
  def vector(self):
    """(y, x, z) components of the unit vector towards the sun."""
    ce = np.cos(self.elevation)
    return (float(ce * np.sin(self.azimuth)), float(ce * np.cos(self.azimuth)),
            float(np.sin(self.elevation)))


def _suns(rng, p):
  """Two suns: the dates differ in season and time of day, hence shadows."""
  az = _uniform(rng, (0.0, 2 * np.pi))
  el = np.radians(_uniform(rng, p.sun_elevation_deg))
  d_az = np.radians(_uniform(rng, p.sun_azimuth_change_deg)) * rng.choice([-1, 1])
  d_el = np.radians(_uniform(rng, p.sun_elevation_change_deg))
  lo, hi = np.radians(p.sun_elevation_limits_deg)
  return (_Sun(az, float(el)),
          _Sun(float(az + d_az), float(np.clip(el + d_el, lo, hi))))


def _direct_light(surface, sun, p):
  """Hillshade: Lambertian incidence cosine on a height field, flat ground = 1."""
  gy, gx = np.gradient(surface, p.pixel_m)
  sy, sx, sz = sun.vector
  cos_i = (sz - gx * sx - gy * sy) / np.sqrt(1.0 + gx * gx + gy * gy)
  return np.clip(cos_i / sz, 0.0, p.max_direct)


def _cast_shadow(canopy, sun, p):
  """Soft 0..1 mask of pixels shaded by taller canopy towards the sun."""
  sy, sx, sz = sun.vector
  horiz = np.hypot(sx, sy)
  uy, ux = sy / horiz, sx / horiz
  rise = sz / horiz * p.pixel_m  # sun ray rise per pixel of horizontal travel
  depth = np.zeros_like(canopy)
  for k in p.shadow_steps_px:
    blocker = _shift_edge(canopy, int(round(-k * uy)), int(round(-k * ux)))
    depth = np.maximum(depth, blocker - np.float32(k * rise) - canopy)
  return np.clip(depth / p.shadow_softness_m, 0.0, 1.0)


def _shade(surface, canopy, sun, ambient, cloud, p):
  """Brightness factor of a date: skylight + direct sun, minus shadows."""
  direct = _direct_light(surface + canopy, sun, p)
  shadow = _cast_shadow(canopy, sun, p)
  direct = direct * (1.0 - shadow) * (1.0 - cloud)
  sky = ambient * (1.0 - (1.0 - p.shadow_ambient) * shadow)
  return sky + np.float32(1.0 - ambient) * direct


def _cloud_shadow(rng, shape, p):
  """Soft 0..1 share of direct sunlight blocked by cloud shadows at one date."""
  field = _noise(rng, shape, p.cloud_sigma_px, 2.0, p.cloud_patch_px)
  thresh = _quantile(field, 1.0 - _uniform(rng, p.cloud_cover), p)
  soft = np.clip((field - thresh) / p.cloud_edge, 0.0, 1.0)
  return np.float32(_uniform(rng, p.cloud_block)) * soft


# ----------------------------------------------------------------------------
# Vegetation.


@dataclasses.dataclass(frozen=True)
class _Canopy:
  """Vegetation shared by both dates (before scars and bare ground cut it)."""
  forest: np.ndarray     # 0..1 share of closed forest (smooth type map)
  grass: np.ndarray      # 0..1 share of open grassland
  height: np.ndarray     # canopy top above ground (m)
  crown: np.ndarray      # 0..1 position within a crown: 1 at the top, 0 in gaps
  tints: tuple           # per-crown colour deviation at (pre, post), unit std


def _crown_seeds(rng, cover, density):
  """Crown centres (y, x): a Poisson process of `density` thinned by `cover`."""
  h, w = cover.shape
  n = rng.poisson(density * h * w)
  y = rng.integers(0, h, n)
  x = rng.integers(0, w, n)
  keep = rng.random(n, dtype=np.float32) < cover[y, x]
  return y[keep], x[keep]


def _vegetation(rng, shape, p):
  """Tree and shrub crowns over forest / shrubland / grassland patches.

  Each pixel belongs to its nearest crown centre (one distance transform);
  inside that crown's radius the canopy is a dome on top of the plant's
  height, elsewhere it is a gap at understory level. Domes shade one side
  and cast shadows, so the sun of each date draws a different crown texture.
  """
  kind = _noise(rng, shape, p.vegetation_patch_sigma_px, p.vegetation_beta,
                p.vegetation_patch_px)
  forest = np.clip(p.forest_map[0] + p.forest_map[1] * kind, 0.0, 1.0)
  grass = np.clip(p.grass_map[0] + p.grass_map[1] * kind, 0.0, 1.0)
  shrub = 1.0 - forest - grass
  groups = [(_crown_seeds(rng, forest, p.tree_density), p.tree_radius_px, p.tree_height_m),
            (_crown_seeds(rng, shrub + p.forest_shrub_layer * forest, p.shrub_density),
             p.shrub_radius_px, p.shrub_height_m)]
  ys = np.concatenate([g[0][0] for g in groups])
  xs = np.concatenate([g[0][1] for g in groups])
  radius = np.concatenate([rng.uniform(*g[1], g[0][0].size) for g in groups])
  top = np.concatenate([rng.uniform(*g[2], g[0][0].size) for g in groups])
  radius, top = radius.astype(np.float32), top.astype(np.float32)
  n = ys.size
  # Crown colours of the two dates are correlated: leaf flush and turning
  # change some crowns, not all. Index n is the neutral tint of the gaps.
  rho = p.crown_colour_persistence
  tint_a = rng.standard_normal(n + 1)
  tint_b = rho * tint_a + np.sqrt(1 - rho * rho) * rng.standard_normal(n + 1)
  tint_a[n] = tint_b[n] = 0.0
  tint_a, tint_b = tint_a.astype(np.float32), tint_b.astype(np.float32)
  if n == 0:
    zero = np.zeros(shape, np.float32)
    return _Canopy(forest, grass, zero + p.understory_m, zero, (zero, zero))
  owner_map = np.full(shape, -1, np.int32)
  owner_map[ys, xs] = np.arange(n, dtype=np.int32)
  dist, (iy, ix) = ndimage.distance_transform_edt(owner_map < 0, return_indices=True)
  owner = owner_map[iy, ix]
  rel = dist.astype(np.float32) / radius[owner]
  crown = np.sqrt(np.clip(1.0 - rel * rel, 0.0, 1.0))
  inside = rel < 1.0
  dome = radius[owner] * np.float32(p.pixel_m * p.crown_dome)
  height = np.where(inside, top[owner] + dome * crown, np.float32(p.understory_m))
  height = ndimage.gaussian_filter(height, p.crown_blur_px)
  owner = np.where(inside, owner, n)
  return _Canopy(forest, grass, height, crown, (tint_a[owner], tint_b[owner]))


def _vegetation_base(veg, p):
  """Date-independent canopy reflectance (3, H, W): type greens, dark gaps."""
  shrub = 1.0 - veg.forest - veg.grass
  gaps = 1.0 - p.gap_darkening * (1.0 - veg.crown) * (1.0 - veg.grass)
  return np.stack([(veg.forest * f + shrub * s + veg.grass * g) * gaps for f, s, g in
                   zip(p.forest_rgb, p.shrub_rgb, p.grass_rgb)])


def _vegetation_colour(rng, base, veg, tint, grain, senescence, p):
  """Canopy reflectance (3, H, W) at one date.

  Yellows dry patches by the date's `senescence` (the seasonal phenology of the
  paper's Fig. 2 I-J), tints each crown and adds grass tussock grain.
  """
  field = _noise(rng, veg.forest.shape, p.dry_patch_sigma_px, p.dry_patch_beta,
                 p.dry_patch_px)
  dry_map = np.clip(p.dry_map[0] + p.dry_map[1] * field, 0.0, 1.0)
  dryness = senescence * dry_map * (1.0 - p.forest_dry_resistance * veg.forest)
  # Yellowing as a per-band gain towards the senescent colour; tints likewise.
  yellowing = np.float32(p.senescent_rgb) / np.float32(p.shrub_rgb) - 1.0
  hue = np.float32(p.crown_tint_rgb) * np.float32(p.crown_colour_jitter)
  tussocks = 1.0 + p.grass_grain * veg.grass * grain
  return np.stack([base[c] * (tussocks + dryness * yellowing[c] + tint * hue[c])
                   for c in range(3)])


# ----------------------------------------------------------------------------
# Landslide-like lobes.


@dataclasses.dataclass(frozen=True)
class _Lobe:
  """One scar outline in its bounding box."""
  box: tuple             # (row slice, column slice) in the scene
  inside: np.ndarray     # bool, the scar
  t: np.ndarray          # 0 at the head, 1 at the toe
  v: np.ndarray          # across-slope offset from the centreline (px)


def _lobe(rng, head, direction, length, width, shape, edge_noise, p):
  """Rasterise one elongated scar lobe that runs from `head` along `direction`.

  The outline is rounded at both ends, flares towards the toe (debris fan) or
  the head (wide crown scarp), bends a little and has irregular edges. None
  when the lobe falls off the scene.
  """
  h, w = shape
  dy, dx = direction
  ny, nx = -dx, dy
  half = 0.5 * width * (1.0 + p.slide_flare[1]) * (1.0 + p.slide_wobble) + p.slide_edge_px[1]
  ys = [head[0] + s * length * dy + q * half * ny for s in (0, 1) for q in (-1, 1)]
  xs = [head[1] + s * length * dx + q * half * nx for s in (0, 1) for q in (-1, 1)]
  r0, r1 = max(0, int(min(ys)) - 2), min(h, int(max(ys)) + 3)
  c0, c1 = max(0, int(min(xs)) - 2), min(w, int(max(xs)) + 3)
  if r1 - r0 < 3 or c1 - c0 < 3:
    return None
  rr = np.arange(r0, r1, dtype=np.float32)[:, None] - np.float32(head[0])
  cc = np.arange(c0, c1, dtype=np.float32)[None, :] - np.float32(head[1])
  t = (rr * dy + cc * dx) / np.float32(length)
  v = rr * ny + cc * nx

  knots = np.linspace(0.0, 1.0, p.slide_knots)
  wobble = np.interp(t, knots, p.slide_wobble * rng.standard_normal(p.slide_knots))
  meander = np.interp(t, knots, rng.standard_normal(p.slide_knots))
  centre = (_uniform(rng, p.slide_bend) * length * t * t
            + p.slide_meander * width * meander)
  flare = _uniform(rng, p.slide_flare)
  tt = np.clip(t, 0.0, 1.0)
  toe_wide = rng.random() < p.slide_toe_wide
  taper = 1.0 + flare * ((tt - 0.5) if toe_wide else (0.5 - tt))
  envelope = np.clip(4.0 * tt * (1.0 - tt), 0.0, 1.0) ** p.slide_bluntness
  half_width = 0.5 * width * taper * envelope * (1.0 + wobble)
  box = (slice(r0, r1), slice(c0, c1))
  edge = min(_uniform(rng, p.slide_edge_px), p.slide_edge_share * width)
  inside = ((np.abs(v - centre) < half_width + edge * edge_noise[box])
            & (t >= 0.0) & (t <= 1.0))
  return _Lobe(box, inside, t.astype(np.float32), (v - centre).astype(np.float32))


def _place_lobes(rng, shape, flow, blocked, edge_noise, target_px, area_range, p,
                 max_count=None):
  """Drop lobes at steep heads until `target_px` pixels are covered.

  Sizes are log-uniform (many small slides, few large ones). Lobes overlapping
  `blocked` or earlier lobes beyond a small share are rejected, so that a
  labelled scar is vegetation at the pre date. Returns (covered, lobes).
  """
  fy, fx, steep = flow
  h, w = shape
  covered = np.zeros(shape, bool)
  lobes = []
  log_lo = np.log(area_range[0])
  min_px = p.slide_min_share * area_range[0]
  for _ in range(p.slide_max_tries):
    remaining = target_px - covered.sum()
    if remaining < min_px or (max_count is not None and len(lobes) >= max_count):
      break
    log_hi = np.log(max(area_range[0], min(area_range[1], p.slide_overshoot * remaining)))
    area = np.exp(rng.uniform(log_lo, log_hi))
    aspect = _uniform(rng, p.slide_aspect)
    length = float(np.sqrt(area * aspect / p.slide_fill))
    cand = rng.integers(0, (h, w), size=(p.slide_head_candidates, 2))
    weight = steep[cand[:, 0], cand[:, 1]].astype(np.float64) ** 2
    y, x = cand[rng.choice(len(cand), p=weight / weight.sum())]
    turn = np.radians(rng.normal(0.0, p.slide_dir_jitter_deg))
    c, s = np.cos(turn), np.sin(turn)
    dy, dx = float(fy[y, x]), float(fx[y, x])
    lobe = _lobe(rng, (y, x), (c * dy - s * dx, s * dy + c * dx), length,
                 length / aspect, shape, edge_noise, p)
    if lobe is None:
      continue
    n = lobe.inside.sum()
    if n < min_px or ((blocked[lobe.box] | covered[lobe.box]) & lobe.inside).sum() > (
        p.slide_max_overlap * n):
      continue
    # Drop slivers and pinholes: a scar is one clean region.
    inside = ndimage.binary_fill_holes(ndimage.binary_opening(lobe.inside))
    lobe = dataclasses.replace(lobe, inside=inside)
    covered[lobe.box] |= inside
    lobes.append(lobe)
  return covered, lobes


def _drop_specks(mask, min_px):
  """Remove connected pieces smaller than `min_px` (slivers cut off by bare ground)."""
  labels, n = ndimage.label(mask)
  if n == 0:
    return mask
  keep = np.bincount(labels.ravel()) >= min_px
  keep[0] = False
  return keep[labels]


# ----------------------------------------------------------------------------
# Bare surfaces: soil, rock, tracks.


def _paint_soil(rng, rgb, relief, lobes, tex, p):
  """Paint scar soil into `rgb` (3, H, W) and depletion/deposit into `relief`.

  Fresh soil shows clods, downslope rills and mottles and, at the toe, dark
  uprooted vegetation debris. The head is depleted and the toe raised, which
  shades the scarp and the lobe's rim.
  """
  w_grain, w_clods, w_rills, w_mottle = p.soil_mix
  for lobe in lobes:
    box, inside = lobe.box, lobe.inside
    base = _colour(rng, p.soil_rgb, p.soil_jitter)
    contrast = _uniform(rng, p.soil_texture)
    rills = np.sin(lobe.v * np.float32(2 * np.pi / _uniform(rng, p.rill_period_px))
                   + p.rill_meander * tex.coarse[box])
    grain = 1.0 + contrast * (w_grain * tex.fine[box] + w_clods * tex.edge[box]
                              + w_rills * rills + w_mottle * tex.coarse[box])
    t = np.clip(lobe.t, 0.0, 1.0)
    grain *= 1.0 + p.head_brightening * (0.5 - t)
    toe = np.clip((t - p.toe_start) / (1.0 - p.toe_start), 0.0, 1.0)
    # Standard-normal grain above ~1 - debris share marks debris patches.
    debris = tex.fine[box] > 1.0 - 2.0 * p.toe_debris * toe
    colour = base[:, None, None] * grain
    colour[:, debris] *= np.float32(p.debris_tint)[:, None]
    rgb[(slice(None),) + box][:, inside] = colour[:, inside]
    depth = _uniform(rng, p.slide_depth_m)
    relief[box][inside] -= depth * (1.0 - (1.0 + p.toe_deposit) * t[inside])


def _rock(rng, shape, steep, p):
  """Bare rock outcrops: blobs favoured on steep ground."""
  blob = _noise(rng, shape, p.rock_sigma_px, p.rock_beta, p.rock_patch_px)
  field = blob + p.rock_steep_weight * _standardise(np.log(steep))
  rock = field > _quantile(field, 1.0 - _uniform(rng, p.rock_fraction), p)
  return ndimage.binary_opening(rock)


def _tracks(rng, shape, p):
  """Roads and footpaths (two boolean maps): smooth random walks with widths."""
  h, w = shape
  maps = {True: np.zeros(shape, bool), False: np.zeros(shape, bool)}
  n_roads = _count(rng, p.roads)
  for k in range(n_roads + _count(rng, p.paths)):
    road = k < n_roads
    n = int(2 * (h + w) / p.track_step_px)
    turns = ndimage.gaussian_filter1d(rng.normal(0, p.track_turn, n), p.track_smooth)
    y0, x0, heading0 = _track_start(rng, shape, road, p)
    heading = heading0 + np.cumsum(turns)
    y = y0 + np.cumsum(p.track_step_px * np.sin(heading))
    x = x0 + np.cumsum(p.track_step_px * np.cos(heading))
    radius = 0.5 * _uniform(rng, p.road_width_px if road else p.path_width_px)
    # Vertices half a radius apart are dense enough for a continuous stroke.
    stride = max(1, int(0.5 * radius / p.track_step_px))
    _stamp(maps[road], y[::stride], x[::stride], radius)
  return maps[True], maps[False] & ~maps[True]


def _track_start(rng, shape, road, p):
  """Start (y, x, heading) of a track.

  Roads enter across a scene edge; footpaths may begin anywhere (a trail head).
  """
  h, w = shape
  if not road:
    return rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0, 2 * np.pi)
  along = _uniform(rng, p.road_entry)
  y, x, inward = ((0.0, along * w, np.pi / 2), (h - 1.0, along * w, -np.pi / 2),
                  (along * h, 0.0, 0.0), (along * h, w - 1.0, np.pi))[rng.integers(4)]
  return y, x, inward + rng.uniform(-p.road_entry_angle, p.road_entry_angle)


def _stamp(mask, y, x, radius):
  """Set every pixel whose centre lies within `radius` of a vertex (y, x)."""
  h, w = mask.shape
  r = int(np.ceil(radius))
  oy, ox = (o.ravel() for o in np.mgrid[-r:r + 1, -r:r + 1])
  py = np.rint(y).astype(np.int64)[:, None] + oy
  px = np.rint(x).astype(np.int64)[:, None] + ox
  keep = (((py - y[:, None]) ** 2 + (px - x[:, None]) ** 2 <= radius * radius)
          & (py >= 0) & (py < h) & (px >= 0) & (px < w))
  mask[py[keep], px[keep]] = True


# ----------------------------------------------------------------------------
# Scene layout: geometry and materials shared by both dates.


@dataclasses.dataclass(frozen=True)
class _Layout:
  """What is where: the same ground under both acquisitions."""
  ground: np.ndarray      # terrain height (m), outcrops included
  veg: _Canopy
  tex: _Textures
  bare: np.ndarray        # rock | road | path | old scar: bare at both dates
  regrown: np.ndarray     # parts of old scars vegetated again
  mask: np.ndarray        # fresh scars (the label)
  canopy_pre: np.ndarray  # canopy height over ground (m) at each date
  canopy_post: np.ndarray
  bare_rgb: np.ndarray    # (3, H, W) reflectance of the bare ground
  soil_rgb: np.ndarray    # (3, H, W) reflectance of the fresh scars
  relief: np.ndarray      # scar depletion / deposit (m), post date only


def _layout(rng, shape, p):
  """Terrain, vegetation, bare ground and fresh scars of one scene."""
  ground, smooth_ground = _terrain(rng, shape, p)
  flow = _downslope(smooth_ground, p)
  veg = _vegetation(rng, shape, p)
  tex = _textures(rng, shape, p)

  rock = _rock(rng, shape, flow[2], p)
  ground += ndimage.gaussian_filter(
      np.where(rock, p.rock_height_m + p.rock_relief_m * tex.edge, np.float32(0.0)),
      p.scarp_sigma_px)
  road, path = _tracks(rng, shape, p)
  old, old_lobes = _place_lobes(
      rng, shape, flow, rock | road, tex.edge, shape[0] * shape[1] * p.old_scar_fraction,
      p.old_scar_area_px, p, max_count=_count(rng, p.old_scars))
  bare = rock | road | path | old

  # Fresh scars keep off everything bare, so that the pre date is vegetation.
  blocked = ndimage.binary_dilation(bare, iterations=p.bare_margin_px)
  target = shape[0] * shape[1] * _uniform(rng, p.slide_fraction)
  mask, lobes = _place_lobes(rng, shape, flow, blocked, tex.edge, target,
                             p.slide_area_px, p)
  mask = _drop_specks(mask & ~bare, p.min_scar_px)

  regrown = old & (tex.coarse > _quantile(tex.coarse, 1.0 - _uniform(
      rng, p.old_scar_regrowth), p))
  canopy_pre = np.where(bare, np.float32(0.0), veg.height)
  canopy_pre[regrown] *= p.regrowth_height
  canopy_post = np.where(mask, np.float32(0.0), canopy_pre)

  bare_rgb = np.zeros((3,) + shape, np.float32)
  _paint_soil(rng, bare_rgb, np.zeros(shape, np.float32), old_lobes, tex, p)
  rock_grain = 1.0 + p.rock_texture * (tex.fine + tex.edge)
  rock_grain[np.abs(tex.coarse) < p.rock_joint_width] *= p.rock_joint_darkening
  for where, grain, palette in ((rock, rock_grain, p.rock_rgb),
                                (road, 1.0 + p.road_texture * tex.fine, p.road_rgb),
                                (path, 1.0 + p.path_texture * tex.fine, p.path_rgb)):
    bare_rgb[:, where] = _colour(rng, palette, p.bare_jitter)[:, None] * grain[where]
  soil_rgb = np.zeros((3,) + shape, np.float32)
  relief = np.zeros(shape, np.float32)
  _paint_soil(rng, soil_rgb, relief, lobes, tex, p)
  relief = ndimage.gaussian_filter(relief * mask, p.scarp_sigma_px)
  return _Layout(ground, veg, tex, bare, regrown, mask, canopy_pre, canopy_post,
                 bare_rgb, soil_rgb, relief)


# ----------------------------------------------------------------------------
# Acquisitions.


@dataclasses.dataclass(frozen=True)
class _Acquisition:
  """Conditions of one date: light, season, camera."""
  sun: _Sun
  cloud: np.ndarray       # share of direct sun blocked (scalar 0 when clear)
  senescence: float       # yellowing strength of dry patches
  exposure: float


def _acquisitions(rng, shape, p):
  """Conditions of the (pre, post) dates, guaranteed to differ."""
  suns = _suns(rng, p)
  clouds = [np.float32(0.0), np.float32(0.0)]
  if rng.random() < p.cloud_prob:
    clouds[rng.integers(2)] = _cloud_shadow(rng, shape, p)
  # Different seasons and flights: either date may be the drier or the darker.
  seasons = [_uniform(rng, p.green_season), _uniform(rng, p.dry_season)]
  if rng.random() < 0.5:
    seasons.reverse()
  exposures = [_uniform(rng, p.exposure)] * 2
  exposures[rng.integers(2)] /= _uniform(rng, p.exposure_step)
  return [_Acquisition(suns[d], clouds[d], seasons[d], exposures[d]) for d in (0, 1)]


def _render(rng, lay, veg_base, acq, post, p):
  """Radiance planes (3, H, W) of one date, before sensor noise."""
  surface = lay.ground + lay.relief if post else lay.ground
  canopy = lay.canopy_post if post else lay.canopy_pre
  shade = _shade(surface, canopy, acq.sun, _uniform(rng, p.ambient), acq.cloud, p)
  rgb = _vegetation_colour(rng, veg_base, lay.veg, lay.veg.tints[int(post)],
                           lay.tex.fine, acq.senescence, p)
  bare_now = lay.bare & ~lay.regrown
  # Bare ground is drier or wetter from one date to the other.
  wetness = np.float32(_uniform(rng, p.bare_wetness))
  rgb[:, bare_now] = lay.bare_rgb[:, bare_now] * wetness
  if post:
    rgb[:, lay.mask] = lay.soil_rgb[:, lay.mask]
  return _radiometry(rng, rgb, shade, acq.exposure, p)


def _radiometry(rng, rgb, shade, exposure, p):
  """Light, camera and atmosphere of one date, applied in place to `rgb`.

  Radiance = reflectance * shade, then exposure and the camera's tone curve,
  per-band gain / gamma / offset (sensor and processing differ between the
  dates), a smooth gain field (vignetting, thin haze) and bluish haze.
  """
  gain = (1.0 + p.band_gain * rng.uniform(-1, 1, 3)).astype(np.float32)
  offset = rng.uniform(*p.band_offset, size=3).astype(np.float32)
  gamma = (_uniform(rng, p.gamma) * (1.0 + p.band_gamma * rng.uniform(-1, 1, 3))
           ).astype(np.float32)
  field = 1.0 + p.gain_field * _noise(rng, shade.shape, p.gain_field_sigma_px, 2.0,
                                      p.gain_field_px)
  haze = np.float32(_uniform(rng, p.haze)) * np.float32(p.haze_rgb)
  rgb *= shade * np.float32(exposure)
  # exp(gamma * log(x)) is the per-band power law; numpy vectorises it, not pow.
  np.maximum(rgb, 1e-6, out=rgb)
  np.log(rgb, out=rgb)
  rgb *= gamma[:, None, None]
  np.exp(rgb, out=rgb)
  rgb *= gain[:, None, None]
  rgb *= field
  rgb += (offset + haze)[:, None, None]
  return rgb


def _to_uint8(rng, rgb, p):
  """Add sensor noise and quantise band planes (3, H, W) to uint8 (H, W, 3).

  One noise pool read at band-specific offsets costs a single draw.
  """
  _, h, w = rgb.shape
  pool = rng.standard_normal((h + 2, w + 2), dtype=np.float32)
  sigma = np.float32(_uniform(rng, p.noise_dn))
  out = np.empty((h, w, 3), np.uint8)
  for c, (oy, ox) in enumerate(((0, 0), (1, 2), (2, 1))):
    noisy = rgb[c] * np.float32(255.0) + sigma * pool[oy:oy + h, ox:ox + w]
    out[..., c] = np.clip(np.rint(noisy), 0, 255)
  return out


# ----------------------------------------------------------------------------
# Public API.


def scene_shape(seed: int, min_side: int, max_side: int) -> tuple[int, int]:
  """(height, width) of scene `seed`, each uniform in [min_side, max_side]."""
  if not PARAMS.min_side <= min_side <= max_side:
    raise ConfigError(f'need {PARAMS.min_side} <= min_side <= max_side, '
                      f'got {min_side}, {max_side}')
  h, w = np.random.default_rng(seed).integers(min_side, max_side + 1, size=2)
  return int(h), int(w)


def generate_scene(seed: int, height: int, width: int) -> dict:
  """Render one bitemporal landslide scene.

  Returns {'pre': uint8 (H, W, 3), 'post': uint8 (H, W, 3), 'mask': uint8 (H, W)}
  where mask is 1 on landslide scars (in the pre image geometry) and 0 elsewhere.
  """
  p = PARAMS
  if min(height, width) < p.min_side:
    raise ConfigError(f'scene must be at least {p.min_side} px a side, '
                      f'got {height}x{width}')
  rng = np.random.default_rng(seed)
  shape = (int(height), int(width))
  lay = _layout(rng, shape, p)
  acquisitions = _acquisitions(rng, shape, p)
  veg_base = _vegetation_base(lay.veg, p)
  pre, post = (_render(rng, lay, veg_base, acq, bool(d), p)
               for d, acq in enumerate(acquisitions))
  shift = rng.uniform(-p.misregistration_px, p.misregistration_px, size=2)
  post = _subpixel_shift(post, float(shift[0]), float(shift[1]))
  return {'pre': _to_uint8(rng, pre, p), 'post': _to_uint8(rng, post, p),
          'mask': lay.mask.astype(np.uint8)}

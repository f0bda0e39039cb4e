"""Paper defaults (Lv et al., DP-FCN): every hyperparameter of the project lives here.

Other configs start from this one and override. Values marked [paper] come from
Section II-C / Table I / Section III-A; the rest are choices the paper leaves open.
"""
import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.seed = 0

  # ---- model (Table I) ----
  c.model = ml_collections.ConfigDict()
  c.model.name = 'dpfcn'            # dpfcn | fcn | unet | fcnpp
  c.model.width = 64                # [paper] 64-128-256-512-1024
  c.model.depth = 4                 # [paper] four 2x2 max-pool levels
  c.model.keep_prob = 0.6           # [paper] dropout after every DFE conv, rate 1 - keep_prob
  c.model.shared_dfe = False        # [paper] "parallel DFE-networks": separate weights per date
  c.model.jfl_width = c.model.get_ref('width')  # [paper] n = 64 DFE channels, JFL conv 64
  c.model.num_classes = 2           # [paper] non-landslide, landslide
  c.model.input_mode = 'stack'      # single-stream baselines: 'stack' (6 bands) | 'diff'
  c.model.fcnpp_bins = (2, 4, 8)    # FCN-PP pyramid bins on the 1/16 map
  c.model.dtype = 'float32'         # compute dtype; 'bfloat16' = mixed precision
  c.model.fast_wgrad = True         # conv weight gradients as GEMMs (XLA:CPU is slow at them)

  # ---- data ----
  c.data = ml_collections.ConfigDict()
  c.data.kind = 'files'             # files | synthetic
  c.data.root = ''                  # sites live in ROOT/<site>/{pre,post,mask}.<ext>
  c.data.train_sites = ()           # site folders relative to root; () = every folder in ROOT/train
  c.data.val_sites = ()
  c.data.test_sites = ()
  c.data.bands = 3                  # [paper] three spectral channels
  c.data.mask_threshold = 127       # mask pixels above this are landslide
  c.data.test_crop = ()             # (rows, cols) top-left crop scored on the test split
  c.data.tile = 128                 # [paper] 128x128 blocks
  c.data.sampling = 'grid'          # [paper] regular blocks | 'random' offsets
  c.data.augment = 'dihedral'       # [paper] rotations ('rotate'); 'dihedral' adds flips | 'none'
  c.data.photometric = 0.0          # strength of per-date colour jitter (0 = off)
  c.data.synthetic = ml_collections.ConfigDict()
  c.data.synthetic.num_scenes = ml_collections.ConfigDict({'train': 8, 'val': 2, 'test': 4})
  c.data.synthetic.seed_offset = ml_collections.ConfigDict(
      {'train': 100_000, 'val': 200_000, 'test': 300_000})  # disjoint seed ranges
  c.data.synthetic.min_side = 600   # like the paper's sites (Table III)
  c.data.synthetic.max_side = 1300

  # ---- optimisation (Section II-C) ----
  c.optimizer = 'adam'              # [paper]
  c.learning_rate = 1e-4            # [paper]
  c.lr_schedule = 'constant'        # constant | cosine
  c.warmup_steps = 0
  c.batch_size = 8                  # global, over all devices and processes
  c.num_train_steps = 20_000
  c.loss = 'ce'                     # [paper] pixel-wise cross-entropy | 'ce+dice' | 'focal'
  c.class_weights = (1.0, 1.0)      # CE weight of non-landslide, landslide
  c.focal_gamma = 2.0
  c.grad_clip_norm = 0.0            # 0 = off

  # ---- loop, logging, checkpoints ----
  c.log_every_steps = 50
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 3
  c.select_best = ''                # '' keeps the latest; 'qa' or 'f1' also keeps the best on val

  # ---- whole-scene inference ----
  c.infer = ml_collections.ConfigDict()
  c.infer.tile = c.data.get_ref('tile')
  c.infer.stride = 96               # window step; tile - stride pixels of overlap, blended
  c.infer.batch_size = 8            # windows per device per call
  c.infer.tta = False               # average the 8 rotations/flips
  c.infer.mc_samples = 0            # >0: MC-dropout passes for an uncertainty map
  c.infer.min_area_m2 = 0.0         # inventory: drop regions smaller than this
  c.infer.fill_holes = False

  # ---- level-set baselines on the change magnitude image (Section III-A) ----
  c.levelset = ml_collections.ConfigDict()
  c.levelset.cmi = ml_collections.ConfigDict({'histogram_match': False})
  c.levelset.else_ = ml_collections.ConfigDict()
  c.levelset.rlse = ml_collections.ConfigDict()
  c.levelset.lseluc = ml_collections.ConfigDict()

  # ---- distributed runtime ----
  c.distributed = ml_collections.ConfigDict()
  c.distributed.enabled = False     # call jax.distributed.initialize (auto on SLURM / Cloud TPU)
  return c

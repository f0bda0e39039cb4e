"""Paper defaults (Lv et al., DP-FCN): every hyperparameter of the project lives here.

Other configs start from this one and override. Values marked [paper] come from
Section II-C / Table I / Section III-A; the rest are choices the paper leaves open.
"""
import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.seed = 0
  # PRNG for init and dropout. XLA:CPU compiles threefry's unrolled rounds slowly
  # (tiny DP-FCN init: 68 s threefry vs 10 s rbg, loaded 2-core host).
  c.prng_impl = 'rbg'
  # XLA_FLAGS set by the command-line entry points before jax starts (cli.py). jax 0.10's
  # XLA:CPU sends convolutions to YNNPACK; its own ran DP-FCN 5-20% faster (docs/RESULTS.md).
  c.xla_flags = '--xla_cpu_experimental_ynn_fusion_type='
  # Compiled programs kept under WORKDIR/<this> by train and predict ('' = off;
  # JAX_COMPILATION_CACHE_DIR wins): a second predict starts faster (docs/RESULTS.md, issue 23).
  c.compilation_cache = '.jax_cache'

  # ---- model (Table I) ----
  c.model = ml_collections.ConfigDict()
  c.model.name = 'dpfcn'            # dpfcn | fcn | unet | fcnpp
  c.model.width = 64                # [paper] 64-128-256-512-1024
  c.model.depth = 4                 # [paper] four 2x2 max-pool levels
  c.model.keep_prob = 0.6           # [paper] dropout after every DFE conv, rate 1 - keep_prob
  c.model.shared_dfe = False        # [paper] "parallel DFE-networks": separate weights per date
  # [paper] JFL conv3x3 64 (Table I). Its own field, not a reference to width: overriding
  # one side of an ml_collections reference would silently change the other.
  c.model.jfl_width = 64
  c.model.num_classes = 2           # [paper] non-landslide, landslide
  c.model.input_norm = 'none'        # [paper] images as they are | 'tile': per-window band standardisation
  # Beyond the paper: 'group' puts GroupNorm(norm_groups) before every DFE/JFL ReLU.
  c.model.norm = 'none'             # [paper] no normalisation layers | 'group'
  c.model.norm_groups = 4           # divides every width of the default and AirChange nets
  c.model.fusion = 'concat'         # [paper] the DFE maps side by side | 'concat_diff': and |f_pre - f_post|
  c.model.input_mode = 'stack'      # single-stream baselines: 'stack' (6 bands) | 'diff'
  c.model.fcnpp_bins = (2, 4, 8)    # FCN-PP pyramid bins on the 1/16 map
  c.model.dtype = 'float32'         # compute dtype; 'bfloat16' = mixed precision

  # ---- how this host computes the network (models/compute.py), not what it is ----
  c.compute = ml_collections.ConfigDict()
  c.compute.fast_wgrad = True       # conv weight gradients as GEMMs on XLA:CPU (slow at them); ignored on GPU/TPU
  c.compute.dropout_bits = 8        # random bits per DFE dropout decision: 8 (keep_prob to 1/256) | 32; ~13% of a width-64 CPU step at 32
  c.compute.winograd = True         # inference: wide f32 3x3 convs by Winograd F(2x2, 3x3) on XLA:CPU (12-13% faster); ignored on GPU/TPU
  c.compute.winograd_wgrad = True   # training, with fast_wgrad: their weight gradients by Winograd F(3x3, 2x2) (8-10% faster steps)

  # ---- data ----
  c.data = ml_collections.ConfigDict()
  c.data.kind = 'files'             # files | synthetic
  c.data.root = ''                  # sites live in ROOT/<site>/{pre,post,mask}.<ext>
  c.data.train_sites = ()           # site folders relative to root; () = every folder in ROOT/train
  c.data.val_sites = ()
  c.data.test_sites = ()
  # Cross-validation (dpfcn_jax/crossval.py) deals the train, val and these labelled sites
  # into folds; training on a split reads only its own field.
  c.data.extra_sites = ()
  # Labelled sites every fold trains on and none holds out (a pair unlike the rest, or
  # one too small to score): they change no fold, and the final model trains on them.
  c.data.train_only_sites = ()
  # Folds are stratified by the first group of this regex matched at the start of a
  # site's folder name, so regions or sensors are spread over the folds; '' = one stratum.
  c.data.site_group = ''
  c.data.bands = 3                  # [paper] three spectral channels
  c.data.mask_threshold = 127       # mask pixels above this are landslide
  c.data.test_crop = ()             # (rows, cols) top-left crop scored on the test split
  c.data.tile = 128                 # [paper] 128x128 blocks
  c.data.sampling = 'grid'          # [paper] regular blocks | 'random' offsets
  c.data.augment = 'dihedral'       # [paper] rotations ('rotate'); 'dihedral' adds flips | 'none'
  c.data.photometric = 0.0          # strength of per-date colour jitter (0 = off)
  # Beyond the paper's rotations (data/augment.py); every one 0/False = off, as the paper.
  c.data.scale_jitter = 0.0         # block scale drawn log-uniformly in [1/(1+s), 1+s]
  c.data.rotate_any = False         # arbitrary-angle rotation (before the dihedral element)
  c.data.blur = 0.0                 # chance per date of a Gaussian blur, sigma U(0.3, 1.5) px
  c.data.noise = 0.0                # per-date Gaussian noise, std U(0, noise) in [0, 1] units
  c.data.histogram_match = 0.0      # chance per block of matching one date's histograms to the other's
  c.data.positive_fraction = 0.0    # share of each batch drawn around landslide pixels (random sampling)
  # Host threads building training batches (numpy lets them run in parallel), and how
  # many batches they may build ahead of the step. 2: this 2-core host's cores; 1, 2 and
  # 4 threads fed 818, 872 and 756 pairs/s, loaded (docs/RESULTS.md, issue 23).
  c.data.loader_workers = 2
  c.data.prefetch_batches = 4       # two per thread, so a slow batch does not stall the step
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
  # Debiased EMA of the parameters, used by validation, eval and predict (dpfcn_jax/ema.py);
  # 0 = off, the paper's last iterate, until cross-validation decides.
  c.ema_decay = 0.0

  # ---- loop, logging, checkpoints ----
  c.log_every_steps = 50
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 3
  c.select_best = ''                # '' keeps the latest; 'qa' or 'f1' also keeps the best on val

  # ---- cross-validation (python -m dpfcn_jax.crossval) ----
  c.crossval = ml_collections.ConfigDict()
  # Steps at which each fold scores its held-out sites; 0 = eval_every_steps. Its own
  # field, so a final-model config can train with no validation (eval_every_steps 0).
  c.crossval.eval_every_steps = 0
  # True: each fold trains one model per site group (data.site_group, e.g. per region) on
  # that group's sites, and each scores its own group's held-out sites; False: one joint
  # model for all. Issue 20's "one joint model against one per region" row.
  c.crossval.per_group = False

  # ---- whole-scene inference ----
  c.infer = ml_collections.ConfigDict()
  c.infer.tile = c.data.get_ref('tile')
  c.infer.stride = 96               # window step; tile - stride pixels of overlap, blended
  c.infer.batch_size = 8            # windows per device per call
  c.infer.tta = False               # average the 8 rotations/flips
  c.infer.mc_samples = 0            # >0: MC-dropout passes for an uncertainty map
  c.infer.min_area_m2 = 0.0         # inventory: drop regions smaller than this (pixels if no georef)
  c.infer.fill_holes = False        # inventory: holes (and regions inside them) join the region
  c.infer.connectivity = 4          # 4: corner-touching pixels are separate landslides; or 8
  c.infer.quicklook_side = 2048     # longest side of quicklook.png; larger scenes are averaged down
  c.infer.progress_every_s = 10.0   # predict logs windows done, windows/s and ETA this often

  # ---- level-set baselines on the change magnitude image (Section III-A) ----
  # The keyword parameters of dpfcn_jax.levelsets, with the same defaults.
  c.levelset = ml_collections.ConfigDict()
  c.levelset.cmi = ml_collections.ConfigDict()
  c.levelset.cmi.histogram_match = False    # choice: the paper mentions no radiometric matching
  c.levelset.else_ = ml_collections.ConfigDict()   # ELSE: edge-based DRLSE (Li et al. 2010)
  c.levelset.else_.alpha = 1.5              # [paper] weighted-area (balloon) term; > 0 shrinks
  c.levelset.else_.c0 = 1.0                 # [paper] binary initial level set: -c0 in, +c0 out
  c.levelset.else_.sigma1 = 1.0             # [paper] Gaussian sigma before the edge indicator
  c.levelset.else_.sigma2 = 1.0             # [paper] read as the Dirac width epsilon
  c.levelset.else_.sigma2_as = 'epsilon'    # choice: 'epsilon' | 'smoothing' (2nd CMI blur)
  c.levelset.else_.eps_if_smoothing = 1.5   # choice: epsilon when sigma2_as='smoothing' (Li)
  c.levelset.else_.lam = 5.0                # choice: weighted-length term of Li's demo
  c.levelset.else_.dt = 5.0                 # choice: time step of Li's shrinking demo
  c.levelset.else_.mu_dt = 0.2              # choice: mu = mu_dt / dt; DRLSE needs mu dt < 1/4
  c.levelset.else_.inner_iters = 5          # choice: 40 outer x 5 inner steps, Li's demo
  c.levelset.else_.outer_iters = 40         # choice: see inner_iters
  c.levelset.else_.refine_iters = 10        # choice: final steps with alpha = 0, Li's demo
  c.levelset.else_.scale = 255.0            # choice: CMI in [0, 255] as DRLSE's g expects
  c.levelset.else_.g_ksize = 15             # choice: 15x15 Gaussian template, as Li
  c.levelset.else_.init_radius = 3          # choice: dilate the Otsu region to contain changes
  c.levelset.else_.init_on_smoothed = True  # choice: Otsu on the smoothed CMI, speckle-free
  c.levelset.else_.otsu_bins = 256          # choice: Otsu histogram bins (skimage default)
  c.levelset.rlse = ml_collections.ConfigDict()    # RLSE: SBGFRLS (Zhang et al. 2010)
  c.levelset.rlse.alpha = 1.0               # [paper] weight of the signed pressure force
  c.levelset.rlse.ksize = 9                 # [paper] 9x9 Gaussian filter template
  c.levelset.rlse.dt = 8.0                  # [paper] time step
  c.levelset.rlse.ksigma = 1.0              # choice: Gaussian sigma of Zhang's demo
  c.levelset.rlse.rho = 1.0                 # choice: binary initial level +-rho, as SBGFRLS
  c.levelset.rlse.max_iter = 500            # choice: a cap only; scenes converge far sooner
  c.levelset.rlse.tol = 1e-5                # choice: stop when sum|phi_n - phi_n-1| < tol
  c.levelset.rlse.border = 'edge'           # choice: 'edge' | 'zero' (MATLAB conv2)
  c.levelset.rlse.otsu_bins = 256           # choice: initial region = Otsu region of the CMI
  c.levelset.lseluc = ml_collections.ConfigDict()  # LSELUC: reconstructed (no paper values)
  c.levelset.lseluc.tau = 0.6               # choice: uncertainty below which FCM labels vote
  c.levelset.lseluc.win = 7                 # choice: window of the local evidence mean
  c.levelset.lseluc.gamma = 0.5             # choice: weight of the local uncertainty term
  c.levelset.lseluc.mu = 0.1                # choice: curvature (length) weight
  c.levelset.lseluc.lam1 = 1.0              # choice: Chan-Vese inside fidelity, usual value
  c.levelset.lseluc.lam2 = 1.0              # choice: Chan-Vese outside fidelity, usual value
  c.levelset.lseluc.dt = 0.5                # choice: explicit time step
  c.levelset.lseluc.eps = 1.0               # choice: width of the smoothed Dirac
  c.levelset.lseluc.max_iter = 300          # choice: iteration cap
  c.levelset.lseluc.tol = 1e-4              # choice: stop when RMS(phi_n - phi_n-1) < tol
  c.levelset.lseluc.fcm_m = 2.0             # choice: the usual FCM fuzzifier
  c.levelset.lseluc.fcm_q_low = 25.0        # choice: first unchanged centre, CMI percentile
  c.levelset.lseluc.fcm_q_high = 90.0       # choice: first changed centre, CMI percentile
  c.levelset.lseluc.fcm_iters = 100         # choice: FCM iteration cap
  c.levelset.lseluc.fcm_tol = 1e-6          # choice: FCM stops when centres move less

  # ---- method comparison (Table IV; python -m dpfcn_jax.compare) ----
  c.compare = ml_collections.ConfigDict()
  # Comma-separated subset, run in Table IV's order; CMI + Otsu is the plain
  # threshold every method must beat.
  c.compare.methods = 'cmi_otsu,else,rlse,lseluc,fcn,unet,fcnpp,dpfcn'
  # Each network is the site config with these overrides (Section III-A's settings).
  c.compare.deep = ml_collections.ConfigDict({
      'fcn': {'model': {'name': 'fcn', 'keep_prob': 0.5}},      # [paper] lr: the base config's
      'unet': {'model': {'name': 'unet', 'keep_prob': 0.6}},    # [paper] lr: the base config's
      'fcnpp': {'model': {'name': 'fcnpp', 'keep_prob': 0.6}},  # [paper] 1x1 pyramid convs built in
      'dpfcn': {'model': {'name': 'dpfcn'}},                    # the base config unchanged
  })
  c.compare.figure_panel_px = 320   # longest side of each map in figure_<site>.png
  c.compare.figure_columns = 4      # panels per row of the figure

  # ---- distributed runtime ----
  c.distributed = ml_collections.ConfigDict()
  # Multi-host jobs (dpfcn_jax/distributed.py): srun job steps and --coordinator_address
  # need no switch; `enabled` asks jax to detect the job (Cloud TPU VMs, Open MPI, k8s).
  c.distributed.enabled = False
  c.distributed.initialization_timeout = 300  # s to wait for every process to join (jax default)
  return c

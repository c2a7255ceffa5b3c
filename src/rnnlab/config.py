"""base_config(): every field of a run, defined once, with a comment (convention 9).

Configs in ``configs/`` start from ``base_config()`` and change what their study needs; the command
line overrides any field (``--config.model.cell=gru``). ``validate(cfg)`` turns a bad value into a
one-line ``RnnlabError`` naming the value and what is allowed.
"""
from __future__ import annotations

import json
import math

import ml_collections

from . import RnnlabError

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
TRAIN_MODES = ("teacher_forcing", "scheduled_sampling", "always_sampling", "soft_sampling", "professor_forcing")
SCHEDULES = ("constant", "linear", "exponential", "inverse_sigmoid")
INITS = ("uniform", "pytorch")
DTYPES = ("float32", "bfloat16")
WANDB_MODES = ("offline", "online", "disabled")


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()

    c.model = m = ml_collections.ConfigDict()
    m.cell = "lstm"  # rnn | rnn_relu | gru (reset-after) | gru_cho (reset-before) | lstm | lstm_peephole | mingru |
    #   minlstm | output_to_hidden (output_to_hidden.py: h_t = tanh(W x_t + U o_{t-1} + b), no hidden-to-hidden)
    m.hidden_size = 200  # H: units per recurrent layer
    m.embed_size = 0  # E: embedding width; 0 = same as hidden_size
    m.num_layers = 2  # L: stacked recurrent layers
    m.dropout = 0.0  # dropout on non-recurrent connections (embedding out, between layers, before readout)
    m.tie_weights = False  # readout uses the embedding matrix (needs embed_size == hidden_size)
    m.init = "uniform"  # uniform: U(+-init_scale) everywhere (Zaremba); pytorch: U(+-1/sqrt(H)) for cells
    m.init_scale = 0.1  # bound of the uniform init when init=uniform
    m.forget_bias = 1.0  # LSTM initial forget-gate bias (Jozefowicz et al. 2015); Zaremba's code used 0
    m.unroll = 1  # lax.scan unroll factor of the recurrence (speed only, same numbers)
    m.matmul_dtype = "float32"  # float32 | bfloat16 operands for the matmuls (fp32 accumulation, fp32 carries)
    m.frame_projection = True  # frame data: a dense input layer K -> E before layer 0; False = frames feed layer 0
    #   directly (its input matrix is the input layer, as in Chung et al. 2014)
    # data of kind pairs (copy | reverse | sort | addition | fra_eng): an encoder-decoder (seq2seq/model.py)
    m.seq2seq = s2 = ml_collections.ConfigDict()
    s2.context = True  # the encoder's final top-layer h fed at every decoder step as well (Cho et al. 2014)
    s2.reverse_source = False  # the encoder reads each source backwards (Sutskever et al. 2014)
    s2.shared_embeddings = False  # one embedding table for source and target (needs one vocabulary)

    c.data = d = ml_collections.ConfigDict()
    d.name = "ptb"  # ptb | ptb_char | tinyshakespeare | timemachine | text | reber | oracle
    d.dir = ""  # folder holding the corpora; '' = $RNNLAB_DATA_DIR, else download to the cache
    d.level = ""  # '' = the corpus' own level; word | char (for text / timemachine)
    d.path = ""  # for name=text: a UTF-8 file, or a folder with *train* / *valid* (or *val*) / *test* files
    d.num_train = 200_000  # synthetic sources: tokens in the train split
    d.num_valid = 20_000  # synthetic sources: tokens in the valid split
    d.num_test = 20_000  # synthetic sources: tokens in the test split
    d.seed = 1234  # synthetic sources: seed of the generator (fixed, independent of train.seed)
    d.oracle = o = ml_collections.ConfigDict()  # name=oracle: a fixed random recurrent LM (SeqGAN / Texygen)
    o.vocab_size = 32  # V of the oracle's tokens
    o.cell = "lstm"  # its cell
    o.hidden_size = 32  # its H (one layer)
    o.embed_size = 32  # its E
    o.init_std = 1.0  # every weight and bias ~ N(0, init_std^2) (SeqGAN: N(0, 1)); larger = peakier, lower entropy
    o.entropy_tokens = 100_000  # tokens of the oracle's own sample for its entropy-rate estimate
    # data.task: the synthetic sequence tasks, whose sizes count sequences, not tokens (data.num_* count tokens
    # of the streams): transduction (running_parity | running_count | running_majority, a target at every step)
    # and seq2seq pairs (copy | reverse | sort | addition); also fra_eng's length filter. Seeded by data.seed.
    d.task = tk = ml_collections.ConfigDict()
    tk.min_len = 1  # shortest train / valid input (addition: digits per operand)
    tk.max_len = 20  # longest train / valid input
    tk.test_min_len = 21  # shortest test input (test lengths above train's: length generalisation)
    tk.test_max_len = 40  # longest test input
    tk.num_train = 10_000  # sequences (pairs) in the train split
    tk.num_valid = 1_000  # sequences (pairs) in the valid split (train's length range)
    tk.num_test = 1_000  # sequences (pairs) in the test split (test_min_len..test_max_len)
    tk.modulus = 5  # running_count: k in y_t = (x_1 + ... + x_t) mod k (Deletang et al. 2023's cycle has 5 states)
    tk.vocab = 0  # input symbols; 0 = the task's default: running_count 2 ({0: stay, 1: +1}) or 3 (and 2: -1);
    #   copy / reverse / sort: 2..26 symbols a, b, c, ... (default 10); parity, majority, addition: fixed
    tk.max_tokens = 10  # fra_eng: keep the pairs whose source and target both have <= this many word tokens

    c.train = t = ml_collections.ConfigDict()
    t.seed = 0  # seeds parameter init, dropout and sampling keys (jax.random.key(seed), split by purpose)
    t.batch_size = 20  # B: parallel streams
    t.bptt = 20  # T: window length of truncated backprop; the carry passes across windows
    t.epochs = 13  # passes over the train split
    t.max_steps = 0  # cap on optimizer steps for short runs; 0 = no cap
    t.optimizer = "sgd"  # sgd | adam | adamw | rmsprop (optax.rmsprop: decay 0.9, eps 1e-8, as Chung et al. 2014)
    t.lr = 1.0  # peak learning rate (per-token mean loss; Zaremba's summed-over-time lr 1 = lr bptt here)
    t.lr_hold_epochs = 4  # keep lr for this many epochs, then multiply by lr_decay each epoch
    t.lr_decay = 0.5  # per-epoch multiplier after the hold (1.0 = constant)
    t.warmup_steps = 0  # linear lr warm-up steps (0 = none)
    t.clip_norm = 5.0  # global-norm gradient clipping (0 = off)
    t.weight_decay = 0.0  # decoupled weight decay (adamw only)
    t.weight_noise = 0.0  # std of Gaussian noise added to every parameter for each forward/backward pass, the update
    #   applied to the noise-free parameters (Graves 2011; Chung et al. 2014: 0.075); 0 = off
    t.early_stop_patience = 0  # stop after this many validations without improvement and evaluate the best
    #   checkpoint on test (Chung et al. 2014); 0 = off (train all epochs, evaluate the last parameters)
    t.mode = "teacher_forcing"  # teacher_forcing | scheduled_sampling | always_sampling | soft_sampling | professor_forcing
    # what the sampled modes feed back (forcing.py): eps = probability of the gold token, per step i
    t.schedule = sc = ml_collections.ConfigDict()
    sc.kind = "inverse_sigmoid"  # constant | linear | exponential | inverse_sigmoid (Bengio et al. 2015 used it)
    sc.eps = 0.75  # constant: eps_i = eps
    sc.start = 1.0  # linear: eps_i = max(eps_min, start - slope * i)
    sc.slope = 1e-4  # linear: decrease of eps per step (1e-4: from 1 to 0 in 10k steps)
    sc.base = 0.9999  # exponential: eps_i = max(eps_min, base ** i), 0 < base < 1
    sc.k = 1000.0  # inverse_sigmoid: eps_i = max(eps_min, k / (k + exp(i / k))), k >= 1; eps = 1/2 at i = k ln k
    sc.eps_min = 0.0  # floor of every schedule (the least gold fed)
    sc.warmup_steps = 0  # pure teacher-forcing steps before the schedule starts (its i counts from the end of them)
    t.feedback = "sample"  # hard feedback: sample (from softmax(logits / feedback_temperature)) | argmax
    t.feedback_temperature = 1.0  # temperature of the fed-back draw; for soft_sampling, of the embedding mix
    t.coin = "token"  # token: one gold-or-model coin per token (Bengio et al.'s choice) | sequence: one per row
    t.sampling_unroll = 4  # scan unroll of the pass that only decides the fed tokens (hard feedback; no gradient,
    #   the same tokens for any value): 4 halves its loop cost on a CPU (docs/perf_notes.md); 0 = model.unroll
    t.sampler = "gumbel"  # how a fed-back token is drawn: gumbel (jax.random.categorical) | inverse_cdf (the same
    #   distribution from one uniform per row, 10-20x cheaper on a CPU at V = 10k; other draws: heads.py)
    # mode professor_forcing (Lamb et al. 2016; seq2seq/professor.py): teacher forcing + a discriminator on the
    # hidden states telling teacher-forced from free-running (fed its own samples) sequences
    t.professor = pf = ml_collections.ConfigDict()
    pf.weight = 1.0  # weight of the adversarial term (free-running states should look teacher-forced)
    pf.reverse = False  # also the reverse term (teacher-forced states should look free-running)
    pf.hidden_size = 64  # the discriminator: bidirectional GRU of this width, then an MLP of this width
    pf.lr = 1e-3  # the discriminator's Adam learning rate (its own optimizer, beside the model's)
    pf.train_below = 0.99  # the discriminator trains only while its accuracy on the batch is below this
    pf.adversarial_above = 0.75  # the adversarial term reaches the model only while that accuracy is above this
    t.log_every = 50  # steps between metrics.jsonl lines
    t.eval_every = 0  # extra validation every N steps (0 = once per epoch and at the end)
    t.progress = True  # progress bar on stderr
    t.skip_nonfinite = False  # a non-finite loss or gradient: False = stop, status diverged; True = skip that update
    #   (optax.apply_if_finite: params, optimizer state and carries unchanged) and count it
    t.max_skips_in_a_row = 10  # with skip_nonfinite: more consecutive skipped updates than this = diverged

    c.eval = e = ml_collections.ConfigDict()
    e.batch_size = 10  # streams for exact valid/test perplexity (every target token counted once)
    e.bptt = 0  # window length for evaluation; 0 = train.bptt
    # free-running metrics at the end of a run (free_running.py): samples from prompts cut from the test split
    e.free_running = False  # compute them (summary keys nll_test, nll_oracle, exposure_gap, distinct_n, ...); configs/tf_vs_ss.py turns it on
    e.num_samples = 256  # S: prompts / samples
    e.prompt_len = 16  # P: gold tokens that warm the carry before sampling
    e.sample_len = 32  # tokens generated per sample (NLL-oracle, distinct-n, reference ppl, grammar validity)
    e.sample_temperature = 1.0  # temperature of those samples and of the self-fed steps of the gap
    e.exposure_ks = (1, 4, 16)  # k: self-fed steps before the gold continuation is scored (exposure-bias gap)
    e.gap_tokens = 4  # gold continuation tokens scored after the k steps
    e.distinct_n = (1, 2, 3)  # n of distinct-n (distinct n-grams / all n-grams of the samples)
    e.reference = ""  # run directory of a reference model (same vocab): ppl of the samples under it; '' = none
    # data of kind pairs: free-running decoding of the valid and test sources at each evaluation (seq2seq/metrics.py)
    e.beam_size = 4  # K of the beam search (summary keys test_beam_*); 0 or 1 = greedy only
    e.length_alpha = 1.0  # beam search ranks finished hypotheses by log p / length ** alpha (0 = raw log p)
    e.decode_extra = 5  # decode up to the split's longest target + 1 (<eos>) + this many tokens

    c.checkpoint = k = ml_collections.ConfigDict()
    k.every_steps = 0  # save every N steps (0 = at epoch ends and at the end only)
    k.keep = 2  # keep the last k checkpoints (plus the best by validation perplexity)

    # several devices in one run (parallel.py; README "Many machines"); 1, 1, False = one device, as before
    c.parallel = pl = ml_collections.ConfigDict()
    pl.data = 1  # N: the batch axis B split over N devices (data parallel; B must be a multiple of N)
    pl.seeds = 1  # N: vmapped seeds (--vmap_seeds) split over N devices (the group's seed count a multiple of N)
    pl.multihost = False  # jax.distributed.initialize() first (reads SLURM's environment); one process per run dir

    c.wandb = w = ml_collections.ConfigDict()
    w.mode = "offline"  # offline (default; sync later with `wandb sync`) | online | disabled
    w.project = "rnnlab"  # W&B project
    w.group = ""  # W&B group (the study); '' = none
    w.name = ""  # W&B run name; '' = the run directory's name
    w.entity = ""  # W&B entity (user or team) for online runs; '' = your default entity
    return c


def _check_choice(value, allowed, field):
    if value not in allowed:
        raise RnnlabError(f"{field}={value!r} is not valid; allowed: {', '.join(map(str, allowed))}")


def _check_positive(value, field, allow_zero=False):
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        need = ">= 0" if allow_zero else "> 0"
        raise RnnlabError(f"{field}={value!r} is not valid; it must be {need}")


# Ranges of the numeric fields not checked one by one in validate() (a field a config lacks is skipped).
NONNEGATIVE = ("train.weight_decay", "data.seed", "train.seed")
POSITIVE = ("model.init_scale", "checkpoint.keep", "data.num_train", "data.num_valid", "data.num_test")


def _node(cfg, path):
    for p in path:
        if not hasattr(cfg, "keys") or p not in cfg:
            return None
        cfg = cfg[p]
    return cfg


def _check_numbers(cfg, prefix: str = "") -> None:
    """Every float field (at any depth, tuples included) is finite: ``--config.train.lr=inf`` or
    ``=1e400`` (which parses as inf) and nan are refused by name before anything is written."""
    for name, value in cfg.items():
        field = f"{prefix}{name}"
        if hasattr(value, "keys"):
            _check_numbers(value, field + ".")
            continue
        items = value if isinstance(value, (tuple, list)) else (value,)
        for v in items:
            if isinstance(v, float) and not math.isfinite(v):
                raise RnnlabError(f"{field}={value!r} is not valid; it must be a finite number")


def validate(cfg) -> None:
    """Raise RnnlabError (one line) on the first invalid field; names only, no data loaded."""
    from .cells import CELLS
    from .data.registry import DATASETS
    from .model import OUTPUT_TO_HIDDEN

    _check_numbers(cfg)  # every number finite (nan, inf, 1e400 never reach training), then the ranges below
    _check_choice(cfg.model.cell, sorted([*CELLS, OUTPUT_TO_HIDDEN]), "model.cell")  # + output_to_hidden.py's network
    _check_choice(cfg.data.name, sorted(DATASETS), "data.name")
    _check_choice(cfg.train.optimizer, OPTIMIZERS, "train.optimizer")
    _check_choice(cfg.train.mode, TRAIN_MODES, "train.mode")
    _check_choice(cfg.model.init, INITS, "model.init")
    _check_choice(cfg.model.matmul_dtype, DTYPES, "model.matmul_dtype")
    _check_choice(cfg.wandb.mode, WANDB_MODES, "wandb.mode")
    if cfg.data.level not in ("", "word", "char"):
        raise RnnlabError(f"data.level={cfg.data.level!r} is not valid; allowed: '' (corpus default), word, char")
    for f in ("model.hidden_size", "model.num_layers", "train.batch_size", "train.bptt", "train.epochs",
              "eval.batch_size", "model.unroll", "train.log_every"):
        sec, name = f.split(".")
        _check_positive(cfg[sec][name], f)
    for f in ("model.embed_size", "train.max_steps", "train.lr", "train.clip_norm",
              "train.eval_every", "train.warmup_steps", "checkpoint.every_steps", "eval.bptt", "train.lr_hold_epochs",
              "train.max_skips_in_a_row"):
        sec, name = f.split(".")
        _check_positive(cfg[sec][name], f, allow_zero=True)
    for f in NONNEGATIVE:
        *path, name = f.split(".")
        node = _node(cfg, path)
        if node is not None and name in node:
            _check_positive(node[name], f, allow_zero=True)
    for f in POSITIVE:
        *path, name = f.split(".")
        node = _node(cfg, path)
        if node is not None and name in node:
            _check_positive(node[name], f)
    if not 0.0 <= cfg.model.dropout < 1.0:
        raise RnnlabError(f"model.dropout={cfg.model.dropout!r} is not valid; it must be in [0, 1)")
    if not 0.0 < cfg.train.lr_decay <= 1.0:
        raise RnnlabError(f"train.lr_decay={cfg.train.lr_decay!r} is not valid; it must be in (0, 1]")
    if cfg.model.tie_weights and cfg.model.embed_size not in (0, cfg.model.hidden_size):
        raise RnnlabError(
            f"model.tie_weights=True needs model.embed_size == model.hidden_size "
            f"(got {cfg.model.embed_size} vs {cfg.model.hidden_size}); set embed_size=0"
        )
    if "schedule" in cfg.train:
        _validate_forcing(cfg)
    if "free_running" in cfg.eval:
        _validate_free_running(cfg)
    if "oracle" in cfg.data:
        _validate_oracle(cfg)
    if "professor" in cfg.train:
        _validate_seq2seq(cfg)
    from . import parallel

    parallel.check(cfg)  # parallel.data / seeds >= 1, train.batch_size a multiple of parallel.data


def _validate_forcing(cfg) -> None:
    from .heads import SAMPLERS

    t, s = cfg.train, cfg.train.schedule
    _check_choice(s.kind, SCHEDULES, "train.schedule.kind")
    _check_choice(t.feedback, ("sample", "argmax"), "train.feedback")
    _check_choice(t.coin, ("token", "sequence"), "train.coin")
    _check_choice(t.get("sampler", "gumbel"), SAMPLERS, "train.sampler")
    _check_positive(t.get("sampling_unroll", 0), "train.sampling_unroll", allow_zero=True)
    for name in ("eps", "start", "eps_min"):
        if not 0.0 <= s[name] <= 1.0:
            raise RnnlabError(f"train.schedule.{name}={s[name]!r} is not valid; it must be in [0, 1]")
    if s.slope < 0:
        raise RnnlabError(f"train.schedule.slope={s.slope!r} is not valid; it must be >= 0")
    if not 0.0 < s.base <= 1.0:
        raise RnnlabError(f"train.schedule.base={s.base!r} is not valid; it must be in (0, 1]")
    if s.k < 1.0:
        raise RnnlabError(f"train.schedule.k={s.k!r} is not valid; inverse_sigmoid needs k >= 1")
    _check_positive(s.warmup_steps, "train.schedule.warmup_steps", allow_zero=True)
    _check_positive(t.feedback_temperature, "train.feedback_temperature")


def _validate_free_running(cfg) -> None:
    e = cfg.eval
    for f in ("num_samples", "prompt_len", "sample_len", "gap_tokens"):
        _check_positive(e[f], f"eval.{f}")
    _check_positive(e.sample_temperature, "eval.sample_temperature")
    for f in ("exposure_ks", "distinct_n"):
        v = e[f]
        if not isinstance(v, (tuple, list)) or not all(isinstance(k, int) and k >= (f == "distinct_n") for k in v):
            low = "1" if f == "distinct_n" else "0"
            raise RnnlabError(f"eval.{f}={v!r} is not valid; it must be a tuple of integers >= {low}, e.g. (1, 4, 16)")


def _validate_seq2seq(cfg) -> None:
    """train.professor and the decoding fields of eval (professor forcing, seq2seq decoding)."""
    pf, e = cfg.train.professor, cfg.eval
    _check_positive(pf.hidden_size, "train.professor.hidden_size")
    _check_positive(pf.lr, "train.professor.lr")
    _check_positive(pf.weight, "train.professor.weight", allow_zero=True)
    for f in ("train_below", "adversarial_above"):
        if not 0.0 <= pf[f] <= 1.0:
            raise RnnlabError(f"train.professor.{f}={pf[f]!r} is not valid; it must be in [0, 1]")
    for f in ("beam_size", "length_alpha", "decode_extra"):
        if f in e:
            _check_positive(e[f], f"eval.{f}", allow_zero=True)


def _validate_oracle(cfg) -> None:
    from .cells import CELLS

    o = cfg.data.oracle
    _check_choice(o.cell, sorted(CELLS), "data.oracle.cell")
    for f in ("vocab_size", "hidden_size", "embed_size", "entropy_tokens"):
        _check_positive(o[f], f"data.oracle.{f}")
    _check_positive(o.init_std, "data.oracle.init_std")


def to_dict(cfg) -> dict:
    """Plain JSON-able dict of a ConfigDict (what config.json holds)."""
    return json.loads(cfg.to_json())


def from_dict(d: dict) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(d)

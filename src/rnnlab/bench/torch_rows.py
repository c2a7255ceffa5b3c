"""The torch rows: ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` with teacher forcing (cuDNN on a GPU,
ATen/oneDNN on a CPU; impl 'torch'), and a Python loop over ``LSTMCell`` / ``GRUCell`` /
``RNNCell`` with scheduled sampling (impl 'torch_loop': what a PyTorch user must write for SS, as
cuDNN cannot feed back samples). Inputs are time-major [T, B]. Peak memory: the CUDA allocator's
peak over the row, None on a CPU; ``compile_s``: the first step's extra time over a steady step."""
from __future__ import annotations

import time

from .. import RnnlabError
from .timing import batches, record, run_alone, timed


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def bench_torch(size_name, size, cell, opts, *, loop: bool, dtype: str = "float32") -> dict:
    """Time one torch row alone (``torch_row``) -> its record."""
    return run_alone(torch_row(size_name, size, cell, opts, loop=loop, dtype=dtype))


def torch_row(size_name, size, cell, opts, *, loop: bool, dtype: str = "float32"):
    """The generator of one torch row (``timing.timed``). loop=False: nn.LSTM/GRU/RNN (cuDNN on GPU),
    teacher forcing. loop=True: a Python loop over LSTMCell/GRUCell/RNNCell with scheduled sampling
    (coin per token, sample by Gumbel-max). dtype float16 (GPU only): the whole model in fp16, the loss
    in fp32: the case in which cuDNN uses its persistent RNN kernels, the strongest peer."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    cuda = torch.cuda.is_available()
    if dtype == "float16" and not cuda:
        raise RnnlabError("torch float16 rows need a GPU (cuDNN's persistent kernels); on a CPU use float32")
    tdt = torch.float16 if dtype == "float16" else torch.float32
    dev = torch.device("cuda" if cuda else "cpu")
    if opts.torch_threads:
        torch.set_num_threads(opts.torch_threads)
    if cuda:  # fp32 with TF32 matmuls, like XLA's default on the GPU
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    V, H, L, B, T = size.vocab, size.hidden, size.layers, size.batch, size.bptt
    is_lstm = cell == "lstm"

    class TorchLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(V, H)
            self.drop = nn.Dropout(opts.dropout)
            if loop:
                c = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}[cell]
                self.cells = nn.ModuleList([c(H, H) for _ in range(L)])
            else:
                c = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
                self.rnn = c(H, H, L, dropout=opts.dropout if L > 1 else 0.0)
            self.out = nn.Linear(H, V)

    model = TorchLM().to(dev, dtype=tdt)
    opt = torch.optim.SGD(model.parameters(), lr=opts.lr)
    params = list(model.parameters())

    def zeros():
        z = lambda: torch.zeros(L, B, H, device=dev, dtype=tdt)  # noqa: E731
        return (z(), z()) if is_lstm else z()

    def detach(h):
        return tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()

    xs_np, ys_np = batches(size, 4)
    xs = [torch.as_tensor(x.T.copy(), dtype=torch.long, device=dev) for x in xs_np]  # [T, B] time-major
    ys = [torch.as_tensor(y.T.copy(), dtype=torch.long, device=dev) for y in ys_np]
    state = {"h": zeros(), "i": 0}

    def forward_cudnn(x, h):
        out, h = model.rnn(model.drop(model.emb(x)), h)
        return model.out(model.drop(out)), h

    def forward_loop_ss(x, h):
        hs = [tuple(t[l] for t in h) if is_lstm else h[l] for l in range(L)]
        coins = torch.rand(T, B, device=dev) < opts.eps  # True: feed the gold token
        logits, prev = [], None
        for t in range(T):
            tok = x[t] if t == 0 else torch.where(coins[t], x[t], prev)
            inp = model.drop(model.emb(tok))
            for l, c in enumerate(model.cells):
                if l > 0:
                    inp = model.drop(inp)
                hs[l] = c(inp, hs[l])
                inp = hs[l][0] if is_lstm else hs[l]
            lg = model.out(model.drop(inp))
            logits.append(lg)
            with torch.no_grad():  # a sample from softmax(lg) by Gumbel-max (no host sync)
                g = -torch.log(-torch.log(torch.rand_like(lg).clamp_min(1e-20)))
                prev = (lg + g).argmax(-1)
        if is_lstm:
            h = (torch.stack([s[0] for s in hs]), torch.stack([s[1] for s in hs]))
        else:
            h = torch.stack(hs)
        return torch.stack(logits), h

    forward = forward_loop_ss if loop else forward_cudnn

    def train_step():
        i = state["i"] % 4
        model.train()
        logits, h = forward(xs[i], state["h"])
        loss = F.cross_entropy(logits.reshape(-1, V).float(), ys[i].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, opts.clip)
        opt.step()
        state["h"] = detach(h)
        state["i"] += 1

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def run(n):
        for _ in range(n):
            train_step()
        sync()

    t0 = time.perf_counter()
    run(1)
    first = time.perf_counter() - t0
    run(max(opts.warmup - 1, 0))
    step_s, timed_steps, _ = yield from timed(run, opts.steps, opts.repeats, opts.min_block_s)

    eval_s = None
    if not loop:
        ebox = {"h": zeros(), "i": 0}

        def erun(n):
            model.eval()
            with torch.no_grad():
                for _ in range(n):
                    i = ebox["i"] % 4
                    logits, ebox["h"] = forward(xs[i], ebox["h"])
                    F.cross_entropy(logits.reshape(-1, V), ys[i].reshape(-1), reduction="sum")
                    ebox["i"] += 1
            sync()

        erun(opts.warmup)
        eval_s, _, _ = yield from timed(erun, opts.eval_steps or opts.steps, opts.repeats, opts.min_block_s)
    peak = int(torch.cuda.max_memory_allocated()) if cuda else None
    impl, mode = ("torch_loop", "ss") if loop else ("torch", "tf")
    variant = ("cell loop" if loop else "cuDNN" if cuda else "nn." + cell.upper()) + (" fp16" if dtype == "float16" else "")
    return record(impl, size_name, size, cell, mode, step_s, eval_s, max(first - step_s, 0.0), peak,
                  variant=variant, timed_steps=timed_steps, torch_dtype=dtype)

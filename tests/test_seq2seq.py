"""The encoder-decoder (seq2seq/model.py) and its decoding (seq2seq/decode.py): scheduled sampling at
eps = 1 equals teacher forcing (loss and gradients, dropout on, one- and two-pass, soft); padding
changes nothing (encoder carries, loss, gradients); the masked unroll against per-row unrolls;
reverse_source reads each source backwards; beam width 1 equals greedy; beam scores are the
normalised teacher-forced log-probabilities of their hypotheses; the free-running metrics by hand."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import RnnlabError
from rnnlab.config import base_config
from rnnlab.data.vocab import Vocab
from rnnlab.forcing import Feedback, forward_sampled_loss_one_pass
from rnnlab.heads import token_nll
from rnnlab.model import initial_carries
from rnnlab.seq2seq.decode import BOS_ID, EOS_ID, beam_decode, check_beam, cut_after_eos, greedy_decode
from rnnlab.seq2seq.metrics import levenshtein, pair_scores, score_hypotheses
from rnnlab.seq2seq.model import Seq2Seq, eval_sums
from rnnlab.unroll import masked_unroll, unroll

VS, VT, H, B, S, T = 9, 11, 8, 4, 6, 7
LENS = np.array([6, 3, 1, 4], np.int32)  # source lengths (row 0 uses the whole width)
TLENS = np.array([7, 2, 5, 1], np.int32)  # target positions counted (mask), <eos> included


def tiny(cell="lstm", dropout=0.0, context=True, layers=2, reverse=False, seed=0):
    m = Seq2Seq(src_vocab_size=VS, tgt_vocab_size=VT, cell=cell, hidden_size=H, num_layers=layers, embed_size=6,
                dropout=dropout, init_scale=0.5, context=context, reverse_source=reverse)
    params = m.init_params(jax.random.key(seed))
    rng = np.random.default_rng(seed)
    src = rng.integers(4, VS, size=(B, S)).astype(np.int32)
    src[np.arange(S)[None, :] >= LENS[:, None]] = 0
    tgt_out = rng.integers(4, VT, size=(B, T)).astype(np.int32)
    mask = (np.arange(T)[None, :] < TLENS[:, None]).astype(np.float32)
    tgt_in = np.concatenate([np.full((B, 1), BOS_ID, np.int32), tgt_out[:, :-1]], axis=1)
    batch = tuple(jnp.asarray(a) for a in (src, LENS, tgt_in, tgt_out, mask))
    return m, params, batch


def mode_cfg(mode, eps=1.0, kind="constant", feedback="sample"):
    c = base_config()
    c.train.mode = mode
    c.train.schedule.kind, c.train.schedule.eps = kind, eps
    c.train.feedback = feedback
    return c


def grads_of(loss_fn, params, batch, key=7):
    f = lambda p: loss_fn(p, (), batch, jax.random.key(key), jnp.int32(0))  # noqa: E731
    return jax.value_and_grad(f, has_aux=True)(params)


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_eps_one_equals_teacher_forcing(cell):
    m, params, batch = tiny(cell, dropout=0.3)  # dropout on: both paths must drop the same units
    (l_tf, (_, m_tf)), g_tf = grads_of(m.make_loss_fn(mode_cfg("teacher_forcing")), params, batch)
    (l_ss, (_, m_ss)), g_ss = grads_of(m.make_loss_fn(mode_cfg("scheduled_sampling", 1.0)), params, batch)
    assert float(l_ss) == float(l_tf) and float(m_ss["gold_fed"]) == float(m_ss["fed_count"]) == B * (T - 1)
    assert float(m_tf["count"]) == TLENS.sum()
    assert_trees_close(g_ss, g_tf, rtol=0, atol=0)  # the two-pass path: the same program on the same tokens
    # the time-outer pass differentiated (soft sampling's path): the same loss and gradients to rounding
    fwd = m.forward()
    for fb in (Feedback("sample"), Feedback("soft")):
        one = lambda p, fb=fb: forward_sampled_loss_one_pass(  # noqa: E731
            fwd, p, (), batch[2], batch[:2], batch[3], batch[4], jax.random.key(7), jnp.float32(1.0), fb)
        (l1, _), g1 = jax.value_and_grad(one, has_aux=True)(params)
        assert float(l1) == pytest.approx(float(l_tf), rel=1e-6)
        assert_trees_close(g1, g_tf, rtol=1e-4, atol=1e-6)
    assert float(l_tf) > 0 and np.isfinite(float(l_tf))


def test_eps_zero_feeds_the_model_and_changes_the_loss():
    m, params, batch = tiny("gru")
    l_tf = float(m.make_loss_fn(mode_cfg("teacher_forcing"))(params, (), batch, jax.random.key(1), 0)[0])
    loss, (_, mt) = m.make_loss_fn(mode_cfg("always_sampling"))(params, (), batch, jax.random.key(1), 0)
    assert float(mt["gold_fed"]) == 0.0 and float(mt["eps"]) == 0.0
    assert abs(float(loss) - l_tf) > 1e-4  # other inputs, another loss
    _, _, fed, gold = m.forward().feedback(params, (), batch[2], batch[:2], jax.random.key(1), 0.0,
                                           Feedback("argmax"), train=False)
    assert bool(gold[:, 0].all()) and not bool(gold[:, 1:].any())
    assert (np.asarray(fed)[:, 0] == BOS_ID).all()


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "mingru"])
def test_masked_unroll_is_each_row_unrolled_to_its_length(cell):
    from rnnlab.cells import get_cell

    c = get_cell(cell)
    key = jax.random.key(3)
    layers = [c.init(jax.random.fold_in(key, i), in_dim=5 if i == 0 else H, hidden=H, init_scale=0.5) for i in range(2)]
    xs = jax.random.normal(key, (S, B, 5))
    mask = jnp.arange(S)[:, None] < jnp.asarray(LENS)[None, :]
    carries, hs = masked_unroll(c, layers, initial_carries(cell, 2, B, H), xs, mask)
    for b in range(B):
        n = int(LENS[b])
        ref_c, ref_h = unroll(c, layers, initial_carries(cell, 2, 1, H), xs[:n, b:b + 1])
        assert_trees_close([x[b:b + 1] for x in jax.tree_util.tree_leaves(carries)],
                           jax.tree_util.tree_leaves(ref_c), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(hs[:n, b]), np.asarray(ref_h[:, 0]), rtol=1e-5, atol=1e-6)
        assert float(jnp.abs(hs[n:, b]).max(initial=0.0)) == 0.0  # padding steps output zeros


@pytest.mark.parametrize("reverse", [False, True])
def test_padding_changes_nothing(reverse):
    m, params, batch = tiny("lstm", 0.2, reverse=reverse)
    src, src_len, tgt_in, tgt_out, mask = batch
    rng = np.random.default_rng(5)
    pad_s = jnp.asarray(np.where(np.asarray(src) == 0, rng.integers(4, VS, size=src.shape), np.asarray(src)), jnp.int32)
    junk = rng.integers(4, VT, size=tgt_out.shape)
    pad_out = jnp.asarray(np.where(np.asarray(mask) > 0, np.asarray(tgt_out), junk), jnp.int32)
    enc = lambda s: m.apply({"params": params}, s, src_len, method=Seq2Seq.encode)  # noqa: E731
    assert_trees_close(enc(src), enc(pad_s), rtol=0, atol=0)  # the encoder never reads past a length
    # wider padding: two more source columns of junk change nothing either
    wide = jnp.concatenate([pad_s, jnp.asarray(rng.integers(4, VS, size=(B, 2)), jnp.int32)], axis=1)
    assert_trees_close(enc(src), enc(wide), rtol=1e-6, atol=1e-7)
    for mode in ("teacher_forcing", "scheduled_sampling"):
        fn = m.make_loss_fn(mode_cfg(mode, 0.5))
        (l0, _), g0 = grads_of(fn, params, batch)
        (l1, _), g1 = grads_of(fn, params, (pad_s, src_len, tgt_in, pad_out, mask))
        assert float(l0) == float(l1)
        assert_trees_close(g0, g1, rtol=0, atol=0)
    if reverse:  # reversed reading = the unreversed model on each source written backwards
        fwd_model = m.clone(reverse_source=False)
        back = np.asarray(src).copy()
        for b, n in enumerate(LENS):
            back[b, :n] = back[b, :n][::-1]
        other = fwd_model.apply({"params": params}, jnp.asarray(back), src_len, method=Seq2Seq.encode)
        assert_trees_close(enc(src), other, rtol=1e-6, atol=1e-7)


def test_eval_sums_count_the_masked_targets():
    m, params, batch = tiny("gru")
    windows = tuple(jnp.stack([a, a]) for a in batch)  # two identical batches
    nll, count, right = eval_sums(m)(params, None, *windows)
    logits = m.apply({"params": params}, *batch[:3])
    want = float((token_nll(logits, batch[3]) * batch[4]).sum())
    assert np.allclose(np.asarray(nll), want, rtol=1e-6) and np.asarray(count).tolist() == [TLENS.sum()] * 2
    hits = (np.asarray(logits).argmax(-1) == np.asarray(batch[3])) * np.asarray(batch[4])
    assert np.asarray(right).tolist() == [hits.sum()] * 2


@pytest.mark.parametrize("cell,context", [("rnn", True), ("gru", False), ("lstm", True)])
def test_beam_one_equals_greedy(cell, context):
    m, params, batch = tiny(cell, context=context, seed=1)
    src, src_len = batch[:2]
    g = np.asarray(greedy_decode(m, params, src, src_len, 9))
    b1, s1 = beam_decode(m, params, src, src_len, 9, 1)
    np.testing.assert_array_equal(np.asarray(b1), g)
    # greedy = the argmax of the teacher-forced logits on its own output
    tin = np.concatenate([np.full((B, 1), BOS_ID), g[:, :-1]], axis=1)
    tf = np.asarray(m.apply({"params": params}, src, src_len, jnp.asarray(tin, jnp.int32))).argmax(-1)
    np.testing.assert_array_equal(np.asarray(cut_after_eos(jnp.asarray(tf))), g)


@pytest.mark.parametrize("K,alpha", [(3, 1.0), (5, 0.6)])
def test_beam_scores_are_normalised_log_probs(K, alpha):
    m, params, batch = tiny("lstm", seed=2)
    src, src_len = batch[:2]
    L = 6
    toks, score = beam_decode(m, params, src, src_len, L, K, alpha)
    toks, score = np.asarray(toks), np.asarray(score)
    _, g_score = beam_decode(m, params, src, src_len, L, 1, alpha)
    has_eos = (toks == EOS_ID).any(1)
    n = np.where(has_eos, (toks == EOS_ID).argmax(1) + 1, L)  # tokens scored, the <eos> included
    assert all((row[k:] == 0).all() for row, k in zip(toks, n))
    tin = np.concatenate([np.full((B, 1), BOS_ID), toks[:, :-1]], axis=1).astype(np.int32)
    nll = np.asarray(token_nll(m.apply({"params": params}, src, src_len, jnp.asarray(tin)), jnp.asarray(toks)))
    logp = -(nll * (np.arange(L)[None, :] < n[:, None])).sum(1)
    np.testing.assert_allclose(logp / n ** alpha, score, atol=1e-4)
    assert (score >= np.asarray(g_score) - 1e-5).all()  # on these models the wider beam finds no worse answer


def test_bad_beam_width_is_one_line():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(RnnlabError, match="beam width .* must be an integer >= 1"):
            check_beam(bad)


def test_free_running_scores_by_hand():
    assert levenshtein("kitten", "sitting") == 3 and levenshtein([], [1, 2]) == 2 and levenshtein([1], [1]) == 0
    assert pair_scores([5, 6], True, [5, 6]) == {"exact": 1.0, "match": 3.0, "positions": 3.0, "edits": 0.0,
                                                 "tokens": 2.0}
    assert pair_scores([5, 6], False, [5, 6])["exact"] == 0.0  # no <eos>: not a finished answer
    rows = np.array([[5, 6, EOS_ID, 0], [5, 7, 8, EOS_ID], [6, 6, 6, 6]])
    refs = [np.array([5, 6]), np.array([5, 8, 8]), np.array([6])]
    out = score_hypotheses(rows, refs)
    assert out["seq_acc"] == pytest.approx(1 / 3)
    # matches: 3 of 3, 3 of 4 (5 . 8 <eos>), 1 of 2 (6, no <eos>) -> 7 / 9
    assert out["token_acc"] == pytest.approx(7 / 9)
    assert out["edit"] == pytest.approx((0 + 1 + 3) / 6)
    assert out["seq_acc_by_len"] == {"1": 0.0, "2": 1.0, "3": 0.0} and out["count_by_len"] == {"1": 1, "2": 1, "3": 1}
    assert "bleu" not in out


def test_bleu_is_sacrebleu_on_detokenised_text():
    import sacrebleu

    v = Vocab(itos=["<pad>", "<bos>", "<eos>", "<unk>", "il", "est", "grand", ".", "petit", "!"], level="word")
    refs = [np.array([4, 5, 6, 7]), np.array([4, 5, 8, 9])]
    rows = np.array([[4, 5, 6, 7, EOS_ID], [4, 5, 6, 9, EOS_ID]])
    out = score_hypotheses(rows, refs, v)
    want = sacrebleu.corpus_bleu(["il est grand.", "il est grand!"], [["il est grand.", "il est petit!"]]).score
    assert out["bleu"] == pytest.approx(want) and 0 < out["bleu"] < 100
    assert score_hypotheses(rows[:1], refs[:1], v)["bleu"] == pytest.approx(100.0)


def test_shared_embeddings_need_one_vocab():
    m = Seq2Seq(src_vocab_size=5, tgt_vocab_size=6, shared_embeddings=True, hidden_size=4)
    with pytest.raises(RnnlabError, match="shared_embeddings=True needs one vocabulary"):
        m.init_params(jax.random.key(0))
    m = Seq2Seq(src_vocab_size=6, tgt_vocab_size=6, shared_embeddings=True, hidden_size=4)
    assert "src_embedding" not in m.init_params(jax.random.key(0))


def test_build_from_config_options():
    from rnnlab.seq2seq.model import build_seq2seq

    c = base_config()
    c.model.seq2seq.context, c.model.seq2seq.reverse_source = False, True
    m = build_seq2seq(c, {"src_vocab_size": 7, "tgt_vocab_size": 9})
    assert (m.context, m.reverse_source, m.tgt_vocab_size, m.cell) == (False, True, 9, c.model.cell)
    c.model.tie_weights = True
    with pytest.raises(RnnlabError, match="tie_weights"):
        build_seq2seq(c, {"src_vocab_size": 7, "tgt_vocab_size": 9})

"""The captioning driver: shards of the corpus, resumable chunks, batched generation, shared decoding.

A shard job runs one or more image-captioning tasks (coarse: the middle
frame; frames: the sampled frames) over its clips, `chunk` clips at a time.
For each chunk it decodes every clip that some task still has to caption
once, with the union of the frames the tasks need, and hands each task its
frames: with both tasks in one job, a clip is decoded once for both
captioners. Finished chunks go to the caption cache, so a rerun (after a
kill, or with only another task's settings changed) captions only what is
missing. Text tasks (summaries, prompted fusion) run the same way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from viclip.captions.base import Clip, ImageCaptioner
from viclip.captions.cache import CaptionCache, digest, file_digest
from viclip.captions.decode import prefetch
from viclip.progress import progress
from viclip.runtime import as_json

log = logging.getLogger("viclip")


def shard_of(clips: list, n_shards: int, shard: int) -> list:
    """Shard `shard` of `n_shards`: a contiguous run of clips, so shards in order are the corpus in order."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is not in 0..{n_shards - 1}")
    bounds = np.linspace(0, len(clips), n_shards + 1).round().astype(int)
    return clips[bounds[shard] : bounds[shard + 1]]


def shard_tag(shard: int, n_shards: int, corpus: str = "") -> str:
    """The name prefix of a shard job's cache files (corpus names hold no '.')."""
    return f"{corpus}.s{shard}of{n_shards}" if corpus else f"s{shard}of{n_shards}"


@dataclass
class ImageTask:
    """A variant made by an image captioner: `indices(n_frames)` picks the frames; `rule` names that choice."""

    name: str
    captioner: ImageCaptioner
    indices: Callable[[int], np.ndarray]
    rule: str

    def fingerprint(self) -> dict:
        return {**self.captioner.fingerprint(), "frames": self.rule}


@dataclass
class Runner:
    """Where and how a job captions: cache folder (None: no cache), file tag, chunk size, decode threads."""

    cache_root: str | None = None
    tag: str = "s0of1"
    chunk: int = 32
    decode_workers: int = 1
    decode_backend: str = "decord"

    def cache(self, task: str, fingerprint: dict) -> CaptionCache | None:
        return None if self.cache_root is None else CaptionCache(self.cache_root, task, fingerprint, self.tag)


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def caption_images(clips: list[Clip], tasks: list[ImageTask], run: Runner) -> dict[str, tuple[list, list]]:
    """{task name: (frame indices per clip, captions per clip)} for every clip."""
    indices = {t.name: [np.asarray(t.indices(c.n_frames), dtype=np.int64) for c in clips] for t in tasks}
    caches = {t.name: run.cache(t.name, t.fingerprint()) for t in tasks}
    captions: dict[str, list] = {t.name: [None] * len(clips) for t in tasks}
    keys: dict[str, list[str]] = {}
    if any(caches.values()):
        contents = [file_digest(c.path) for c in progress(clips, desc="hash videos", mininterval=2.0)]
        for t in tasks:
            if caches[t.name] is None:
                continue
            keys[t.name] = [
                digest([c.clip_id, h, c.start_s, c.end_s, i.tolist()])
                for c, h, i in zip(clips, contents, indices[t.name])
            ]
            hits = caches[t.name].lookup(keys[t.name])
            for j, k in enumerate(keys[t.name]):
                if k in hits:
                    captions[t.name][j] = json.loads(hits[k])
    missing = {t.name: sum(c is None for c in captions[t.name]) for t in tasks}
    log.info(
        "%d clips; from the cache: %s; to caption: %s",
        len(clips),
        as_json({n: len(clips) - m for n, m in missing.items()}),
        as_json(missing),
    )

    pixel_tasks = [t for t in tasks if t.captioner.needs_pixels]
    # Per clip, the union of the frames its pending pixel tasks need: one decode serves all of them.
    union = {}
    for j in range(len(clips)):
        need = [indices[t.name][j] for t in pixel_tasks if captions[t.name][j] is None]
        if need:
            union[j] = np.unique(np.concatenate(need))
    work = [[j for j in r if any(captions[t.name][j] is None for t in tasks)] for r in _chunks(len(clips), run.chunk)]
    work = [w for w in work if w]
    to_decode = [[j for j in w if j in union] for w in work]
    stream = prefetch(
        (([clips[j] for j in d], [union[j] for j in d]) for d in to_decode if d), run.decode_workers, run.decode_backend
    )

    bar = progress(total=len(clips), initial=len(clips) - sum(map(len, work)), desc="caption", mininterval=2.0)
    for chunk, dec in zip(work, to_decode):
        frames = dict(zip(dec, next(stream)[1])) if dec else {}
        for t in tasks:
            js = [j for j in chunk if captions[t.name][j] is None]
            if not js:
                continue
            pix = None
            if t.captioner.needs_pixels:
                pix = [frames[j][np.searchsorted(union[j], indices[t.name][j])] for j in js]
            out = t.captioner.caption_many([clips[j] for j in js], [indices[t.name][j] for j in js], pix)
            for j, texts in zip(js, out):
                if len(texts) != len(indices[t.name][j]):
                    raise RuntimeError(
                        f"{t.name}: {len(texts)} captions for {len(indices[t.name][j])} frames of {clips[j].clip_id}"
                    )
                captions[t.name][j] = list(texts)
            if caches[t.name] is not None:
                caches[t.name].add({keys[t.name][j]: json.dumps(captions[t.name][j]) for j in js})
        bar.update(len(chunk))
    bar.close()
    for cache in caches.values():
        if cache is not None:
            cache.compact()
    return {t.name: (indices[t.name], captions[t.name]) for t in tasks}


def caption_texts(
    clip_ids: list[str],
    inputs: list,
    generate: Callable[[list[int]], list[str]],
    task: str,
    fingerprint: dict,
    run: Runner,
) -> list[str]:
    """One text per clip from `generate(positions)`, chunk by chunk, reusing cached texts.

    `inputs[i]` is everything clip i's text depends on besides `fingerprint`
    (its frame captions, and its coarse caption for prompted fusion).
    """
    cache = run.cache(task, fingerprint)
    texts: list[str | None] = [None] * len(clip_ids)
    keys = [digest([c, x]) for c, x in zip(clip_ids, inputs)]
    if cache is not None:
        hits = cache.lookup(keys)
        texts = [hits.get(k) for k in keys]
    pending = [i for i, t in enumerate(texts) if t is None]
    log.info(
        "%s: %d clips; from the cache: %d; to write: %d",
        task,
        len(clip_ids),
        len(clip_ids) - len(pending),
        len(pending),
    )
    bar = progress(total=len(clip_ids), initial=len(clip_ids) - len(pending), desc=task, mininterval=2.0)
    for r in _chunks(len(pending), run.chunk):
        js = [pending[i] for i in r]
        out = generate(js)
        for j, text in zip(js, out):
            texts[j] = text
        if cache is not None:
            cache.add({keys[j]: texts[j] for j in js})
        bar.update(len(js))
    bar.close()
    if cache is not None:
        cache.compact()
    return texts

"""`hogar pull REF`: a GGUF file from the Hugging Face Hub into the models folder, resumable and verified.

Through huggingface_hub (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE and proxies as it reads them). Its hf_hub_download
neither resumes across processes nor checks sha256, so hogar keeps the partial file itself (models/.partial/, named
by the file's sha256 so that a partial only ever resumes the same content), resumes it with a range request
(huggingface_hub's http_get, resume_size) and hashes every file against the Hub's LFS sha256 before it joins the
library; a mismatch is deleted and reported.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from hogar.errors import HogarError
from hogar.hub import library
from hogar.hub.refs import DEFAULT_QUANT, HubRef, parse_ref
from hogar.store import models_dir


class PullError(HogarError):
    pass


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None  # LFS files
    blob_id: str | None  # git blob sha1 (files kept in git, not LFS)


_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _token() -> str | None:
    tok = os.environ.get("HF_TOKEN")
    if tok:
        return tok
    from huggingface_hub import get_token

    return get_token()


def _hub_error(e: Exception, ref: HubRef, what: str = "") -> PullError:
    """One line a user can act on, for what huggingface_hub or the network raised."""
    from huggingface_hub import errors

    if isinstance(e, errors.GatedRepoError):
        how = "the token in HF_TOKEN has no access" if _token() else "set HF_TOKEN to a token of an account with access"
        return PullError(f"{ref.repo} is gated: accept its conditions on its Hub page, and {how}")
    if isinstance(e, errors.RepositoryNotFoundError):
        return PullError(f"no model repo {ref.repo} on the Hub ({endpoint()}); check the name (owner/repo), or set "
                         "HF_TOKEN if it is private")
    if isinstance(e, errors.RevisionNotFoundError):
        return PullError(f"{ref.repo} has no revision {ref.revision!r}")
    if isinstance(e, errors.EntryNotFoundError | errors.RemoteEntryNotFoundError):
        return PullError(f"{ref.repo} has no file {what or ref.file}; `hogar pull {ref.repo}` lists what it offers")
    if isinstance(e, errors.OfflineModeIsEnabled):
        return PullError("HF_HUB_OFFLINE is set: pulling needs the network; unset it, or use a local .gguf file")
    if isinstance(e, errors.HfHubHTTPError):
        return PullError(f"the Hub answered {e}".splitlines()[0])
    return PullError(f"cannot reach the Hub at {endpoint()} ({type(e).__name__}); check the network or HF_ENDPOINT, "
                     "or use a local .gguf file")


def repo_files(ref: HubRef) -> tuple[str, list[RemoteFile]]:
    """The commit the revision points at, and the repo's files with their sizes and hashes."""
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=endpoint(), token=_token()).model_info(ref.repo, revision=ref.revision,
                                                                     files_metadata=True)
    except Exception as e:  # noqa: BLE001 - every failure becomes one line (see _hub_error)
        raise _hub_error(e, ref) from None
    files = []
    for s in info.siblings or []:
        lfs = s.lfs
        size = s.size if s.size is not None else (lfs.size if lfs else 0)
        files.append(RemoteFile(s.rfilename, int(size or 0), lfs.sha256 if lfs else None, s.blob_id))
    return str(info.sha), files


def _quant_of(name: str) -> str | None:
    m = re.search(r"(?i)(?:^|[-_.])((?:I?Q\d(?:_[A-Z0-9]+)*)|F16|BF16|F32)(?:-\d{5}-of-\d{5})?\.gguf$",
                  Path(name).name)
    return m.group(1).upper() if m else None


def choose(ref: HubRef, files: list[RemoteFile]) -> list[RemoteFile]:
    """The GGUF file(s) the reference names: its file, or the one of its quantization (all parts of a split file)."""
    ggufs = [f for f in files if f.path.lower().endswith(".gguf") and "mmproj" not in f.path.lower()]
    if ref.file:
        hit = [f for f in files if f.path == ref.file]
        if not hit:
            raise PullError(f"{ref.repo} has no file {ref.file}; `hogar pull {ref.repo}` lists what it offers")
        picks = hit
    else:
        want = (ref.quant or DEFAULT_QUANT).upper()
        picks = [f for f in ggufs if _quant_of(f.path) == want]
        if not picks and ref.quant is None and len({_SPLIT.sub("", f.path) for f in ggufs}) == 1:
            picks = ggufs
        if not picks:
            offered = sorted({q for f in ggufs if (q := _quant_of(f.path))})
            if not ggufs:
                raise PullError(f"{ref.repo} has no GGUF files; pull a GGUF repo (often named ...-GGUF)")
            raise PullError(f"{ref.repo} has no {want} file; it offers {', '.join(offered) or 'files without a '}"
                            f"{'' if offered else 'quantization in their names'}: add :QUANT to the reference")
    first = picks[0]
    m = _SPLIT.search(first.path)
    if m:  # every part of a split file
        stem = _SPLIT.sub("", first.path)
        picks = sorted((f for f in files if _SPLIT.search(f.path) and _SPLIT.sub("", f.path) == stem),
                       key=lambda f: f.path)
        if len(picks) != int(m.group(2)):
            raise PullError(f"{ref.repo}: {first.path} is one of {int(m.group(2))} parts, the repo has {len(picks)}")
    else:
        stems = {f.path for f in picks}
        if len(stems) > 1:
            raise PullError(f"{ref.repo}: several {ref.quant or DEFAULT_QUANT} files ({', '.join(sorted(stems))}); "
                            "name one: owner/repo/file.gguf")
    return picks


def _hash(path: Path, algo: str, prefix: bytes = b"") -> str:
    h = hashlib.new(algo)
    h.update(prefix)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def download(ref: HubRef, commit: str, rf: RemoteFile, dest: Path, progress: bool = True) -> Path:
    """rf into dest, resuming a partial download of the same content; verified before it is moved into place."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.file_download import http_get

    key = rf.sha256 or rf.blob_id or hashlib.sha256(f"{ref.repo}/{commit}/{rf.path}".encode()).hexdigest()
    partial = dest.parent / ".partial" / f"{key}.part"
    partial.parent.mkdir(parents=True, exist_ok=True)
    have = partial.stat().st_size if partial.exists() else 0
    if have > rf.size:
        partial.unlink()
        have = 0
    need = rf.size - have
    free = shutil.disk_usage(partial.parent).free
    if need > free:
        raise PullError(f"not enough disk space for {rf.path}: {need / 2**30:.2f} GiB more needed, "
                        f"{free / 2**30:.2f} GiB free in {partial.parent}; free some space or set HOGAR_MODELS")
    if need > 0 or rf.size == 0:
        url = hf_hub_url(ref.repo, rf.path, revision=commit, endpoint=endpoint())
        tok = _token()
        headers = {"authorization": f"Bearer {tok}"} if tok else {}
        if not progress:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        try:
            with open(partial, "ab") as f:
                http_get(url, f, resume_size=have, headers=headers, expected_size=rf.size,
                         displayed_filename=Path(rf.path).name)
        except OSError as e:
            if e.errno == 28:  # ENOSPC
                raise PullError(f"the disk filled up while writing {partial}; free some space and pull again "
                                "(the download resumes)") from None
            raise _hub_error(e, ref, rf.path) from None
        except Exception as e:  # noqa: BLE001
            raise _hub_error(e, ref, rf.path) from None
    if partial.stat().st_size != rf.size:
        raise PullError(f"{rf.path}: got {partial.stat().st_size} of {rf.size} bytes; pull again to resume")
    if rf.sha256:
        got, want = _hash(partial, "sha256"), rf.sha256
    elif rf.blob_id:
        got, want = _hash(partial, "sha1", f"blob {rf.size}\0".encode()), rf.blob_id
    else:
        got = want = ""
    if got != want:
        partial.unlink()
        raise PullError(f"{rf.path} from {ref.repo} does not match the Hub's hash (got {got[:12]}..., expected "
                        f"{want[:12]}...); the file was deleted: pull again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, dest)
    return dest


# what a Hugging Face checkpoint folder needs for hogar convert (weights: *.safetensors at the top level)
_CHECKPOINT_FILES = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                     "tokenizer.model", "special_tokens_map.json", "added_tokens.json", "model.safetensors.index.json"}


def _is_checkpoint(files: list[RemoteFile]) -> bool:
    names = {f.path for f in files}
    return ("config.json" in names and any(n.endswith(".safetensors") and "/" not in n for n in names)
            and not any(n.lower().endswith(".gguf") for n in names))


def pull_checkpoint(ref: HubRef, commit: str, files: list[RemoteFile], quant: str | None,
                    progress: bool) -> library.Entry:
    """A safetensors repo: downloaded (resumable, verified), converted by hogar convert and, with a quantization,
    quantized by hogar quantize: the guides' three manual steps as one. The checkpoint is deleted afterwards."""
    from hogar.convert import convert
    from hogar.quantize import quantize_file

    existing = library.find(ref)
    if existing and existing.path.exists():
        return existing
    owner, name = ref.repo.split("/")
    # named after the repo, as a `huggingface-cli download --local-dir NAME` folder: the converter names the model by it
    folder = models_dir() / ".hf" / f"{owner}--{commit[:12]}" / name
    for rf in files:
        if "/" not in rf.path and (rf.path in _CHECKPOINT_FILES or rf.path.endswith(".safetensors")):
            target = folder / rf.path
            if not target.exists():
                download(ref, commit, rf, target, progress)
    kind = quant.upper() if quant else "F16"
    dest = models_dir() / f"{name}-{kind}.gguf"
    if dest.exists():
        raise PullError(f"{dest} exists and was not pulled from {ref.repo}; move it away first")
    converted = dest.with_name(f".{dest.stem}.convert.gguf") if quant else dest
    convert(folder, converted, outtype="auto" if not quant else "f16", progress=progress)
    if quant:
        try:
            quantize_file(converted, dest, kind, progress=progress)
        finally:
            converted.unlink(missing_ok=True)
    shutil.rmtree(folder.parent, ignore_errors=True)
    return library.record(ref, commit, dest.name, dest, _hash(dest, "sha256"), dest.stat().st_size)


def pull(text: str, progress: bool = True, quant: str | None = None) -> library.Entry:
    """Pull the model a reference names into the models folder; returns its library entry (kept if already there).
    A safetensors repo is converted (and quantized to `quant`, or the reference's :QUANT, where given)."""
    ref = parse_ref(text)
    commit, files = repo_files(ref)
    if _is_checkpoint(files) and not ref.file:
        return pull_checkpoint(ref, commit, files, quant or ref.quant, progress)
    if quant:
        raise PullError(f"--quant applies to safetensors repos; {ref.repo} has GGUF files: pick one with :QUANT")
    picks = choose(ref, files)
    rf = picks[0]
    folder = models_dir()
    name = _SPLIT.sub(".gguf", Path(rf.path).name)  # a split model becomes one file
    dest = folder / name
    existing = library.find(ref)
    want = (rf.sha256 or rf.blob_id) if len(picks) == 1 else ",".join(p.sha256 or p.blob_id or "" for p in picks)
    if existing and existing.path.exists() and existing.sha256 == want:
        return existing
    if dest.exists() and not existing:
        raise PullError(f"{dest} exists and was not pulled from {ref.repo}; move it away or pull by another name")
    if len(picks) == 1:
        download(ref, commit, rf, dest, progress)
        return library.record(ref, commit, rf.path, dest, want or "", rf.size)
    from hogar.hub.split import merge

    parts = [download(ref, commit, p, folder / ".partial" / f"{p.sha256 or p.blob_id}.gguf", progress)
             for p in picks]  # each verified; kept until the merged file is in place
    merge(parts, dest)
    for p in parts:
        p.unlink(missing_ok=True)
    return library.record(ref, commit, name, dest, want, dest.stat().st_size)

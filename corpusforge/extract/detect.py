"""What a file is: its content type from magic bytes first, its extension second.

``sniff(head, name)`` looks at the first bytes (after decompression) and the file name and
returns a ``Kind``: the input format (``pdf``, ``docx``, ``html``, ``code``, ``image`` ...) and,
for code, the language. Which extensions mean which format comes from the registered formats
(``sources/input_formats.py``; each one's ``detect`` says how far its name is trusted). Extensions only decide between formats the bytes cannot tell apart
(JSON Lines vs plain text, Python vs Go); a PNG named ``notes.txt`` is still an image.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass

from corpusforge.sources.archives import is_tar_header
from corpusforge.sources.compression import strip_compression_suffix
from corpusforge.sources.input_formats import extension_kinds

HEAD_BYTES = 8192

# Media containers, by magic bytes (offset 0 unless a lambda checks more).
_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
    b"BM": "image/bmp",
    b"II*\x00": "image/tiff",
    b"MM\x00*": "image/tiff",
    b"\x00\x00\x01\x00": "image/x-icon",
}
_AUDIO_MAGIC = {
    b"fLaC": "audio/flac",
    b"OggS": "audio/ogg",
    b"ID3": "audio/mpeg",
    b"#!AMR": "audio/amr",
}

CODE_EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".tsx": "typescript", ".java": "java", ".kt": "kotlin",
    ".scala": "scala", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp",
    ".hh": "cpp", ".cs": "csharp", ".go": "go", ".rs": "rust", ".rb": "ruby", ".php": "php",
    ".sh": "shell", ".bash": "shell", ".zsh": "shell", ".pl": "perl", ".pm": "perl", ".lua": "lua",
    ".r": "r", ".swift": "swift", ".m": "objective-c", ".sql": "sql", ".hs": "haskell", ".ml": "ocaml",
    ".ex": "elixir", ".exs": "elixir", ".erl": "erlang", ".clj": "clojure", ".dart": "dart",
    ".jl": "julia", ".zig": "zig", ".vue": "vue", ".css": "css", ".scss": "scss", ".toml": "toml",
    ".yaml": "yaml", ".yml": "yaml", ".ini": "ini", ".cfg": "ini", ".mk": "makefile", ".cmake": "cmake",
    ".ps1": "powershell", ".bat": "batch", ".f90": "fortran", ".asm": "assembly", ".s": "assembly",
}
CODE_FILENAMES = {"makefile": "makefile", "dockerfile": "dockerfile", "cmakelists.txt": "cmake",
                  "rakefile": "ruby", "gemfile": "ruby", "build": "starlark", "build.bazel": "starlark"}
_SHEBANG = [
    (re.compile(rb"python"), "python"), (re.compile(rb"\b(?:ba|z|k|da)?sh\b"), "shell"),
    (re.compile(rb"node|deno"), "javascript"), (re.compile(rb"ruby"), "ruby"), (re.compile(rb"perl"), "perl"),
    (re.compile(rb"php"), "php"), (re.compile(rb"lua"), "lua"), (re.compile(rb"Rscript"), "r"),
]
_LEGACY_NAMES = {".doc": "DOC", ".xls": "XLS", ".ppt": "PPT"}


@dataclass(frozen=True)
class Kind:
    """A file's reader family, its MIME type when known, and the code language for code."""

    family: str
    mime: str = ""
    language: str = ""

    @property
    def is_media(self) -> bool:
        return self.family in ("image", "audio", "video")


def extension(name: str) -> str:
    return posixpath.splitext(strip_compression_suffix(name).lower())[1]


def _media(head: bytes, ext: str) -> Kind | None:
    for magic, mime in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            # ICO's magic is short and could begin other binary formats: trust it only with the name.
            if mime != "image/x-icon" or ext == ".ico":
                return Kind("image", mime)
    for magic, mime in _AUDIO_MAGIC.items():
        if head.startswith(magic):
            return Kind("audio", mime)
    if head[:4] == b"RIFF" and len(head) >= 12:
        form = head[8:12]
        if form == b"WEBP":
            return Kind("image", "image/webp")
        if form == b"WAVE":
            return Kind("audio", "audio/wav")
        if form == b"AVI ":
            return Kind("video", "video/x-msvideo")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"avif"):
            return Kind("image", "image/heic" if brand != b"avif" else "image/avif")
        if brand.startswith(b"M4A"):
            return Kind("audio", "audio/mp4")
        return Kind("video", "video/quicktime" if brand == b"qt  " else "video/mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Kind("video", "video/webm" if b"webm" in head[:64] else "video/x-matroska")
    if len(head) >= 2 and head[0] == 0xFF and head[1] in (0xFB, 0xF3, 0xF2, 0xFA) and ext == ".mp3":
        return Kind("audio", "audio/mpeg")
    return None


def _zip_kind(head: bytes, data: bytes | None, ext: str) -> Kind:
    """OOXML, EPUB and ODF are ZIP archives: tell them apart by their members."""
    names: list[str] = []
    if data is not None:
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError):
            names = []  # a damaged directory: the extension decides, and extraction reports the damage
    if head[30:38] == b"mimetype":
        if b"application/epub+zip" in head[:100]:
            return Kind("epub", "application/epub+zip")
        if b"application/vnd.oasis.opendocument" in head[:120]:
            return Kind("odf", "application/vnd.oasis.opendocument")
    joined = " ".join(names)
    if "word/document.xml" in joined:
        return Kind("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    if "ppt/presentation.xml" in joined:
        return Kind("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation")
    if "xl/workbook.xml" in joined:
        return Kind("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    if "META-INF/container.xml" in joined:
        return Kind("epub", "application/epub+zip")
    if "content.xml" in joined:
        return Kind("odf", "application/vnd.oasis.opendocument")
    fam = extension_kinds("zip").get(ext)
    if fam is not None:
        return Kind(fam)
    return Kind("archive", "application/zip")


def _looks_textual(head: bytes) -> bool:
    if b"\x00" in head:
        # UTF-16 text has NULs; everything else with NULs is binary.
        return head.startswith((b"\xff\xfe", b"\xfe\xff"))
    return True


def sniff(head: bytes, name: str, data: bytes | None = None) -> Kind:
    """The kind of a file from its first bytes ``head`` (decompressed) and its ``name``.

    ``data`` (the whole file) is only needed to tell ZIP-based formats apart.
    """
    ext = extension(name)
    base = posixpath.basename(strip_compression_suffix(name).lower())
    if head.startswith(b"%PDF-"):
        return Kind("pdf", "application/pdf")
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(head, data, ext)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return Kind("legacy_office", "application/x-ole-storage", _LEGACY_NAMES.get(ext, "DOC/XLS/PPT"))
    if head.startswith(b"{\\rtf"):
        return Kind("legacy_office", "application/rtf", "RTF")
    media = _media(head, ext)
    if media is not None:
        return media
    if head.startswith(b"PAR1"):
        return Kind("parquet", "application/vnd.apache.parquet")
    if head.startswith(b"ARROW1") or (head[:4] == b"\xff\xff\xff\xff" and ext in (".arrow", ".feather", ".ipc")):
        return Kind("arrow", "application/vnd.apache.arrow.file")  # IPC file (Feather v2), or stream
    if head.lstrip(b"\r\n").startswith((b"WARC/", b"filedesc://")):  # bodies may hold NUL bytes
        return Kind("warc", "application/warc")
    if is_tar_header(head):  # its members are read as files (sources/archives.py)
        return Kind("tar", "application/x-tar")
    media_ext = extension_kinds("media")
    if not _looks_textual(head):
        if ext in media_ext:
            return Kind(media_ext[ext])
        return Kind("binary", "application/octet-stream")
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    lower = stripped[:1024].lower()
    if stripped.startswith((b"WARC/", b"filedesc://")):
        return Kind("warc", "application/warc")
    if ext in extension_kinds("name"):
        return Kind(extension_kinds("name")[ext])
    if stripped.startswith(b"#!"):
        first = stripped.split(b"\n", 1)[0]
        for pattern, lang in _SHEBANG:
            if pattern.search(first):
                return Kind("code", "text/x-script", lang)
        return Kind("code", "text/x-script", "shell")
    if ext in CODE_EXTENSIONS:
        return Kind("code", "text/x-source", CODE_EXTENSIONS[ext])
    if base in CODE_FILENAMES:
        return Kind("code", "text/x-source", CODE_FILENAMES[base])
    if lower.startswith((b"<!doctype html", b"<html")) or (
        lower.startswith((b"<!--", b"<head", b"<meta")) and b"<html" in lower
    ):
        return Kind("html", "text/html")
    if lower.startswith(b"<?xml"):
        return Kind("html", "text/html") if b"<html" in lower else Kind("xml", "application/xml")
    if ext in extension_kinds("content"):
        return Kind(extension_kinds("content")[ext])
    promised = extension_kinds("magic").get(ext) or extension_kinds("zip").get(ext) or media_ext.get(ext)
    if promised is not None:  # the name promises a binary format the bytes do not carry
        return Kind("mismatch", "", promised)
    return Kind("text", "text/plain")

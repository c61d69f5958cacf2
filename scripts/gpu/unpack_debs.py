#!/usr/bin/env python3
"""Unpacks Debian packages (.deb) into a prefix without dpkg.

The GPU machine's image is not Debian and may lack dpkg-deb and ar; a .deb
is an ar archive holding data.tar.{xz,gz,zst}, which Python reads itself
(zstd needs the zstandard module; Debian 12's packages use xz).

  unpack_debs.py PREFIX file.deb...
"""
import io
import os
import sys
import tarfile


def ar_members(data):
    """Yields (name, bytes) of an ar archive."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        pos += 60
        yield name, data[pos:pos + size]
        pos += size + (size % 2)


def unpack(deb, prefix):
    with open(deb, "rb") as f:
        data = f.read()
    for name, payload in ar_members(data):
        if not name.startswith("data.tar"):
            continue
        if name.endswith(".zst"):
            import zstandard  # Only for zstd-compressed packages.
            payload = zstandard.ZstdDecompressor().decompress(payload, max_output_size=1 << 31)
            mode = "r:"
        else:
            mode = "r:*"
        with tarfile.open(fileobj=io.BytesIO(payload), mode=mode) as tar:
            for member in tar.getmembers():
                # Absolute links would leave the prefix: relink them inside it.
                if member.issym() and member.linkname.startswith("/"):
                    target = os.path.join(prefix, member.linkname.lstrip("/"))
                    where = os.path.dirname(os.path.join(prefix, member.name))
                    member.linkname = os.path.relpath(target, where)
            if hasattr(tarfile, "data_filter"):  # Python 3.12 warns without a filter.
                tar.extractall(prefix, filter="fully_trusted")
            else:
                tar.extractall(prefix)
        return
    raise ValueError(f"{deb}: no data.tar member")


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    prefix = argv[1]
    os.makedirs(prefix, exist_ok=True)
    for deb in argv[2:]:
        try:
            unpack(deb, prefix)
        except (OSError, ValueError, tarfile.TarError) as e:
            sys.stderr.write(f"unpack_debs: {deb}: {e}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

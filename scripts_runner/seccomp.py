"""The seccomp filter of sandboxed runs, built with libseccomp (`pyseccomp`) and handed to bwrap.

Every system call is allowed except the ones a script has no business making
and that widen the kernel's attack surface: tracing other processes, mounting,
entering or creating namespaces, BPF, perf, the kernel keyring, userfaultfd,
reading other processes' memory, kexec and kernel modules (and a few more of
the same kind). They fail with `REFUSED_ERRNO` — ENOTRECOVERABLE, which no
kernel path returns for them — so a test can tell the filter's refusal from a
missing capability (EPERM).

The filter is compiled once per process to a BPF program; each run gets its
own copy in a memfd (`sandbox.start`), which bwrap reads with `--seccomp FD`
and installs just before it executes the interpreter.
"""

from __future__ import annotations

import errno
import functools
import tempfile

REFUSED_ERRNO = errno.ENOTRECOVERABLE

#: System calls the filter refuses (names as libseccomp knows them).
REFUSED_SYSCALLS = (
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # mounts and the new mount API
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount",
    "fspick", "mount_setattr",
    # namespaces
    "unshare", "setns",
    # kernel interfaces sandboxed code never needs
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "reboot", "acct", "quotactl", "syslog",
    "iopl", "ioperm", "lookup_dcookie",
    # io_uring executes operations outside the filter's sight
    "io_uring_setup", "io_uring_enter", "io_uring_register",
)


class SeccompUnavailable(Exception):
    """libseccomp (Debian's libseccomp2) or pyseccomp is missing."""


@functools.lru_cache(maxsize=1)
def program() -> bytes:
    """The compiled BPF program (cached per process)."""
    try:
        import pyseccomp
    except (ImportError, OSError) as exc:  # the package, or the C library it wraps, is missing
        raise SeccompUnavailable(f"libseccomp is not available ({exc}); install Debian's libseccomp2") from exc
    refused = pyseccomp.ERRNO(REFUSED_ERRNO)
    filt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in REFUSED_SYSCALLS:
        if pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) < 0:
            continue  # not a system call on this architecture (e.g. iopl off x86)
        filt.add_rule(refused, name)
    with tempfile.TemporaryFile() as fh:
        filt.export_bpf(fh)
        fh.seek(0)
        return fh.read()


def syscall_numbers() -> dict[str, int]:
    """Native numbers of the refused calls that exist on this architecture (for tests and probes)."""
    import pyseccomp

    numbers = {name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name in REFUSED_SYSCALLS}
    return {name: nr for name, nr in numbers.items() if nr >= 0}


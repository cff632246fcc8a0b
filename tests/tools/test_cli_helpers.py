"""run_cli: what stops a tool becomes one line on stderr and an exit status, never a traceback."""

import errno

from data.errors import InputError
from tools._cli import run_cli


def _raising(exc):
    def main(argv=None):
        raise exc

    return main


def test_a_failed_write_names_the_file_and_says_how_to_continue(capsys):
    code = run_cli(_raising(OSError(errno.ENOSPC, "No space left on device", "/w/svms.npz")), [], "add --resume")
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err == "error: /w/svms.npz: No space left on device (ENOSPC); free some disk space, then add --resume\n"
    assert run_cli(_raising(PermissionError(errno.EACCES, "Permission denied", "/w/head.pt")), []) == 1
    assert capsys.readouterr().err.startswith("error: /w/head.pt: Permission denied (EACCES); run the same")


def test_bad_input_exits_2_and_ctrl_c_exits_130(capsys):
    assert run_cli(_raising(InputError("cfg.yaml", "bad value")), []) == 2
    assert capsys.readouterr().err == "error: cfg.yaml: bad value\n"
    assert run_cli(_raising(KeyboardInterrupt()), [], "add --resume") == 130
    assert capsys.readouterr().err == "interrupted; add --resume\n"

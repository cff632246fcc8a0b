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


def test_overlap_is_still_accepted_with_one_warning(capsys, tmp_path):
    """--overlap went (slower on 2 cores); for one release it parses, warns once and changes nothing."""
    from tools import test_det, train_det

    for tool in (train_det, test_det):
        code = run_cli(tool.main, ["--work-dir", str(tmp_path / "missing"), "--data-root", str(tmp_path), "--overlap"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("--overlap is gone") == 1, err  # then the usual one-line error

"""treelstm.cli: the values the parsers show without importing the library are the library's,
the commands' table, and the names ``treelstm.__main__`` keeps for the scripts that import them.
(The commands' behaviour: test_training.py, test_predict.py, test_sick.py, test_seeds.py, test_parse.py.)"""
import dataclasses

import pytest

import treelstm.__main__ as main_module
from treelstm import cli, predict, sick, training
from treelstm.cli import defaults, options
from treelstm.data import VIEWS
from treelstm.models import BACKENDS, CELLS


def test_training_defaults_are_the_librarys():
    assert vars(defaults.TRAIN_DEFAULTS) == dataclasses.asdict(training.TrainConfig())
    assert defaults.DEFAULT_DATA == training.DEFAULT_DATA
    assert defaults.MAX_SEED == training.MAX_SEED
    assert list(defaults.COMPARE_ROW_LABELS.items()) == \
        [(name, label) for name, (label, _, _) in training.COMPARE_ROWS.items()]
    assert defaults.DEFAULT_COMPARE_ROWS == tuple(training.DEFAULT_COMPARE_ROWS)


def test_sick_and_predict_values_are_the_librarys():
    assert vars(defaults.SICK_DEFAULTS) == sick.RelatednessConfig().to_dict()
    assert defaults.SICK_DEFAULTS.data == sick.DEFAULT_SICK_DATA
    assert defaults.SICK_ENCODERS == tuple(sick.ENCODERS)
    assert defaults.PREDICT_FORMATS == tuple(predict.FORMATS)
    assert defaults.PREDICT_DTYPES == tuple(predict.DTYPES)


def _choices(parser, dest):
    return next(action.choices for action in parser._actions if action.dest == dest)


@pytest.mark.parametrize("make_parser", [cli.train_parser, cli.compare_parser])
def test_choices_are_the_librarys(make_parser):
    parser = make_parser("x")
    assert set(_choices(parser, "cell")) == set(CELLS)
    assert set(_choices(parser, "backend")) == set(BACKENDS)
    if make_parser is cli.train_parser:
        assert tuple(_choices(parser, "model")) == tuple(training.MODEL_KINDS)
        assert set(_choices(parser, "view")) == set(VIEWS)


def test_commands_table_holds_each_command():
    assert list(cli.COMMANDS) == ["train", "eval", "compare", "predict", "sick-train",
                                  "sick-eval", "parser", "parse"]
    assert cli.COMMANDS["train"] is cli.train_command
    assert cli.COMMANDS["predict"][0] is cli.predict_parser  # (make_parser, run, help, hint)
    for name, command in cli.COMMANDS.items():
        assert command.make_parser(f"python -m treelstm {name}").prog == \
            f"python -m treelstm {name}"
        assert command.help and callable(command.run)


def test_main_module_keeps_the_names_scripts_import():
    from treelstm.cli.main import main

    for name in main_module.__all__:
        assert hasattr(main_module, name), name
    assert main_module.main is main
    assert main_module.train_command is cli.train_command
    assert main_module.build_parser is cli.build_parser
    assert main_module.CONFIG_FIELDS_SET_BY_COMMANDS is cli.CONFIG_FIELDS_SET_BY_COMMANDS
    assert (main_module.MAX_THREADS, main_module.MAX_SIZE, main_module.MAX_LAYERS) == \
        (options.MAX_THREADS, options.MAX_SIZE, options.MAX_LAYERS)


def test_a_command_on_its_own_uses_its_prog(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.eval_command(["--threads", "-1"], prog="eval.py")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: eval.py")
    assert f"argument --threads: expected an integer in [0, {options.MAX_THREADS}], got -1" in err


def test_ctrl_c_in_train_on_its_own_names_resume(tmp_path, monkeypatch, capsys):
    """The hint of an interrupted run belongs to the command, whichever way it was started."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", interrupted)
    status = cli.train_command(["--out", str(tmp_path / "run"), "--quiet"], prog="train_sst.py")
    assert status == 130
    assert capsys.readouterr().err == ("train_sst.py: interrupted; checkpoint.pt holds the last "
                                       "finished epoch: --resume goes on from there\n")

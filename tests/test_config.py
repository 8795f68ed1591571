import pytest

from speedlimit import config


def test_defaults_are_the_seed_grid():
    cfg = config.validate({})
    assert cfg["grid"]["num_workers"] == [0, 1, 2, 4, 8, 16]
    assert cfg["grid"]["batch_size"] == [100, 1000, 10000]
    assert cfg["grid"]["lr"] == [0.01]
    assert cfg["grid"]["workload"] == ["fashionmnist"] and cfg["workloads"] == {"custom": None}
    assert cfg["train"] == {"epochs": 1, "seed": 0, "repeats": "auto", "max_rounds": 40,
                            "margin": 0.1, "threshold": 0.02,
                            "budget": "30m", "probe": {"windows": 5, "window_samples": 1000},
                            "interleave": {"enabled": True, "windows": 30,
                                           "window_seconds": 0.1},
                            "exclusive": True, "warm_start": True, "time_limit": None,
                            "redo_disturbed": 0}
    assert cfg["data"]["source"] == "fashionmnist"
    assert cfg["data"]["md5"]["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert cfg["data"]["synthetic"] == {"train_size": 60000, "test_size": 10000, "seed": 0}


def test_command_line_strings_are_converted():
    # snakemake --config grid="{num_workers: [0, 3]}" parses with YAML's BaseLoader: strings
    cfg = config.validate({"grid": {"num_workers": ["0", "3"], "lr": ["1e-3"],
                                    "pin_memory": ["true"], "prefetch_factor": ["null", "4"]},
                           "train": {"epochs": "2", "repeats": "3"}})
    assert cfg["grid"]["num_workers"] == [0, 3]
    assert cfg["grid"]["lr"] == [0.001]
    assert cfg["grid"]["pin_memory"] == [True]
    assert cfg["grid"]["prefetch_factor"] == [None, 4]
    assert cfg["train"]["epochs"] == 2


def test_repeats_is_a_number_or_auto_from_the_command_line_too():
    assert config.validate({"train": {"repeats": "3"}})["train"]["repeats"] == 3
    assert config.validate({"train": {"repeats": "auto"}})["train"]["repeats"] == "auto"
    for bad in ("0", "x", "2.5"):
        with pytest.raises(config.ConfigError, match="train.repeats"):
            config.validate({"train": {"repeats": bad}})


def test_a_race_needs_one_epoch_and_says_so():
    with pytest.raises(config.ConfigError, match="train.epochs: 2 with train.repeats: auto"):
        config.validate({"train": {"epochs": 2}})
    assert config.validate({"train": {"epochs": 2, "repeats": 3}})["train"]["epochs"] == 2


@pytest.mark.parametrize("text, seconds", [("900", 900.0), ("90s", 90.0), ("15m", 900.0),
                                           ("1.5h", 5400.0), (600, 600.0), (None, None)])
def test_budgets(text, seconds):
    assert config.budget_seconds(text) == seconds
    assert config.validate({"train": {"budget": text}})["train"]["budget"] == text


def test_a_budget_in_other_words_is_named():
    with pytest.raises(config.ConfigError, match="train.budget"):
        config.validate({"train": {"budget": "10 minutes"}})


@pytest.mark.parametrize("bad, key, words", [
    ({"grid": {"num_workers": [-1]}}, "grid.num_workers[0]", "minimum"),
    ({"grid": {"num_workers": ["two"]}}, "grid.num_workers[0]", "integer"),
    ({"grid": {"num_workers": [1.5]}}, "grid.num_workers[0]", "integer"),
    ({"grid": {"num_workers": []}}, "grid.num_workers", "non-empty"),
    ({"grid": {"num_workers": [1, 1]}}, "grid.num_workers", "duplicates"),
    ({"grid": {"batch_size": [0]}}, "grid.batch_size[0]", "minimum"),
    ({"grid": {"lr": [0]}}, "grid.lr[0]", "> 0"),
    ({"grid": {"lr": ["fast"]}}, "grid.lr[0]", "number"),
    ({"grid": {"num_worker": [1]}}, "grid.num_worker", "unknown key"),
    ({"trian": {}}, "trian", "unknown key"),
    ({"train": {"epochs": 0}}, "train.epochs", "minimum"),
    ({"data": {"source": "imagenet"}}, "data.source", "fashionmnist, synthetic"),
    ({"grid": {"device": ["tpu"]}}, "grid.device[0]", "cpu, cuda, auto"),
])
def test_bad_values_name_the_key_and_what_is_allowed(bad, key, words):
    with pytest.raises(config.ConfigError) as err:
        config.validate(bad)
    message = str(err.value)
    assert key in message
    assert words in message


def test_every_error_is_reported_at_once():
    with pytest.raises(config.ConfigError) as err:
        config.validate({"grid": {"num_workers": [-1], "batch_size": [0]}})
    assert "grid.num_workers[0]" in str(err.value) and "grid.batch_size[0]" in str(err.value)


def test_a_config_that_is_not_a_mapping_is_rejected():
    with pytest.raises(config.ConfigError, match="mapping"):
        config.validate(["grid"])


def test_a_command_line_value_that_is_not_yaml_says_so():
    with pytest.raises(config.ConfigError) as err:
        config.validate({"grid": "{num_workers: [0,"})
    assert "not valid YAML" in str(err.value) and "keys: num_workers" in str(err.value)


def test_a_malformed_yaml_file_is_named_with_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("grid:\n  lr: [0.01\ntrain: {}\n")
    with pytest.raises(config.ConfigError,
                       match=r"c\.yaml is not valid YAML at line \d+, column \d+"):
        config.check_yaml_file(path)
    path.write_text("grid: {}\n")
    config.check_yaml_file(path)


def test_the_old_name_of_max_rounds_is_an_error_naming_the_new_one():
    with pytest.raises(config.ConfigError, match="train.max_repeats is now train.max_rounds: "
                                                 "rename it in your config"):
        config.validate({"train": {"max_repeats": 12}})
    assert config.validate({"train": {"max_rounds": 12}})["train"]["max_rounds"] == 12


def test_the_levers_are_checked_and_the_threshold_must_stay_below_the_margin():
    cfg = config.validate({"train": {"margin": 0.2, "threshold": 0.05}})
    assert (cfg["train"]["margin"], cfg["train"]["threshold"]) == (0.2, 0.05)
    with pytest.raises(config.ConfigError, match="train.margin"):
        config.validate({"train": {"margin": 0}})
    with pytest.raises(config.ConfigError, match="train.threshold: 0.1 is not below "
                                                 "train.margin: 0.1"):
        config.validate({"train": {"threshold": 0.1}})


def test_the_custom_workload_is_a_function_or_a_function_with_its_args():
    spec = {"function": "examples.template:make", "args": {"root": "/data/mine", "size": 100}}
    assert config.validate({"workloads": {"custom": spec}})["workloads"]["custom"] == spec
    assert config.validate({"workloads": {"custom": "a.b:make"}})["workloads"] == {
        "custom": "a.b:make"}
    alone = {"function": "a.b:make"}  # no args: none (nothing filled in)
    assert config.validate({"workloads": {"custom": alone}})["workloads"]["custom"] == alone
    for bad, words in (({"function": "a.b:make", "arg": {}}, "workloads.custom.arg: unknown key "
                        "(did you mean 'args'? allowed here: function, args)"),
                       ({"args": {}}, "'function' is a required property"),
                       ({"function": "a/b.py"}, "workloads.custom.function"),
                       ({"function": "a.b:make", "args": [1]}, "workloads.custom.args"),
                       ("not a function", "workloads.custom")):
        with pytest.raises(config.ConfigError) as err:
            config.validate({"workloads": {"custom": bad}})
        assert words in str(err.value), err.value

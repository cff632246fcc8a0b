"""A record stays current while its resolved config is the code's, key by key."""

from eval.run_records import still_current

NOW = [{"seed": 0, "head": {"fc6": 512, "dropout": 0.0}, "scales": [688]}, {"preset": "voc07"}]


def test_the_same_config_is_current():
    assert still_current(NOW, NOW)


def test_an_option_removed_from_the_code_since_does_not_count():
    recorded = [{**NOW[0], "pretrain": {"epochs": 4}}, NOW[1]]
    assert still_current(recorded, NOW)


def test_a_changed_value_a_new_option_or_another_list_does_count():
    changed = [{**NOW[0], "head": {"fc6": 4096, "dropout": 0.0}}, NOW[1]]
    assert not still_current(changed, NOW)
    newer = [{**NOW[0], "head": {**NOW[0]["head"], "svd": None}}, NOW[1]]
    assert not still_current(NOW, newer)  # recorded before the option existed: its effect is unknown
    assert not still_current([{**NOW[0], "scales": [688, 480]}, NOW[1]], NOW)
    assert not still_current([NOW[0], {"preset": "coco"}], NOW)

"""TF_CONFIG derived from a JobSet pod's environment (TrainJob), and kept when given (TFJob)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tlt_core.cluster import tf_config
from tlt_core.errors import UsageError


def jobset_env(index: int, total: int = 4, replicas: int = 1, **extra) -> dict[str, str]:
    per_job = total // replicas
    env = {
        tf_config.JOBSET_NAME: "tlt-train-abc",
        tf_config.REPLICATED_JOB: "node",
        tf_config.JOB_INDEX: str(index // per_job),
        tf_config.REPLICATED_JOB_REPLICAS: str(replicas),
        tf_config.COMPLETION_INDEX: str(index % per_job),
        tf_config.NUM_WORKERS: str(total),
    }
    env.update(extra)
    return env


def test_indexed_job_of_four_pods():
    """Trainer's layout: one ``node`` job, numNodes completions, pod index = worker index."""
    env = jobset_env(2)
    assert tf_config.ensure_tf_config(env) is True
    config = json.loads(env["TF_CONFIG"])
    assert config == {
        "cluster": {
            "worker": [f"tlt-train-abc-node-0-{i}.tlt-train-abc:2222" for i in range(4)],
        },
        "task": {"type": "worker", "index": 2},
    }


def test_replicated_jobs_of_one_pod_each_and_custom_subdomain_and_port():
    env = jobset_env(3, total=4, replicas=4)
    env[tf_config.SUBDOMAIN] = "workers"
    env[tf_config.PORT] = "23456"
    place = tf_config.placement_from_jobset(env)
    assert place.index == 3 and not place.chief
    assert place.workers == tuple(f"tlt-train-abc-node-{i}-0.workers:23456" for i in range(4))


def test_two_jobs_of_two_pods():
    places = [tf_config.placement_from_jobset(jobset_env(i, 4, 2)) for i in range(4)]
    assert [p.index for p in places] == [0, 1, 2, 3]
    assert places[0].workers[2] == "tlt-train-abc-node-1-0.tlt-train-abc:2222"
    assert len({p.workers for p in places}) == 1  # every worker sees the same list
    assert [p.chief for p in places] == [True, False, False, False]


def test_given_tf_config_is_kept():
    given_config = json.dumps(
        {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}
    )
    env = {**jobset_env(0), "TF_CONFIG": given_config}
    assert tf_config.ensure_tf_config(env) is True
    assert env["TF_CONFIG"] == given_config
    assert tf_config.placement_from_tf_config(given_config).index == 1


def test_tf_config_with_a_chief_counts_it_first():
    text = json.dumps(
        {
            "cluster": {"chief": ["c:1"], "worker": ["w0:1", "w1:1"]},
            "task": {"type": "worker", "index": 0},
        }
    )
    place = tf_config.placement_from_tf_config(text)
    assert place.workers == ("c:1", "w0:1", "w1:1") and place.index == 1


def test_outside_a_jobset_and_single_worker_jobs_run_alone():
    env: dict[str, str] = {}
    assert tf_config.ensure_tf_config(env) is False and "TF_CONFIG" not in env
    single = jobset_env(0, total=1)
    assert tf_config.ensure_tf_config(single) is False and "TF_CONFIG" not in single


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({tf_config.NUM_WORKERS: ""}, "TLT_NUM_WORKERS is not set"),
        ({tf_config.NUM_WORKERS: "four"}, "not an integer"),
        ({tf_config.NUM_WORKERS: "5", tf_config.REPLICATED_JOB_REPLICAS: "2"}, "not a multiple"),
        ({tf_config.COMPLETION_INDEX: "4"}, "outside"),
        ({tf_config.JOB_INDEX: "-1"}, "negative"),
        ({tf_config.REPLICATED_JOB: ""}, "must be set"),
    ],
)
def test_bad_environment_is_one_clear_error(change, message):
    env = {**jobset_env(0), **change}
    with pytest.raises(UsageError, match=message):
        tf_config.ensure_tf_config(env)


@given(
    replicas=st.integers(1, 4),
    per_job=st.integers(1, 4),
    data=st.data(),
)
def test_every_worker_gets_a_distinct_index_and_the_same_peers(replicas, per_job, data):
    total = replicas * per_job
    places = [tf_config.placement_from_jobset(jobset_env(i, total, replicas)) for i in range(total)]
    assert sorted(p.index for p in places) == list(range(total))
    assert len({p.workers for p in places}) == 1
    assert len(set(places[0].workers)) == total
    index = data.draw(st.integers(0, total - 1))
    host = places[index].workers[index].split(".")[0]
    # The pod's own hostname: <jobset>-<replicated job>-<job index>-<completion index>.
    assert host == f"tlt-train-abc-node-{index // per_job}-{index % per_job}"


def test_runtime_maps_the_jobset_labels_the_derivation_reads():
    assert set(tf_config.DOWNWARD_API) == {
        tf_config.JOBSET_NAME,
        tf_config.REPLICATED_JOB,
        tf_config.JOB_INDEX,
        tf_config.REPLICATED_JOB_REPLICAS,
    }
    for source in tf_config.DOWNWARD_API.values():
        assert "jobset.sigs.k8s.io/" in source

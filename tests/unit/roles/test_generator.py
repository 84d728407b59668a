import pytest
import torch
from toy_models import SMALL

from curriculum.config import ArithmeticWorldConfig, Config, GeneratorConfig
from curriculum.curricula.selection import gaussian_usefulness
from curriculum.models import build_char_tokenizer, build_tiny_model
from curriculum.roles.generator import Generator, GeneratorRole
from curriculum.training.sft import sft_args
from curriculum.training.weighted_sft import (
    build_weighted_dataset,
    make_weighted_sft_trainer,
)
from curriculum.worlds.arithmetic import ArithmeticWorld

# Enough steps (32 examples / 8 x 24 epochs) for the tiny model to learn one target by heart.
MEMORISE = GeneratorConfig(learning_rate=3e-2, epochs=24, batch_size=8, max_new_tokens=16)
TARGET = "57+38=?"
REASONS = {"empty", "too_long", "duplicate", "unparseable"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    pass


@pytest.fixture(scope="module")
def world():
    return ArithmeticWorld(ArithmeticWorldConfig(), seed=0)


@pytest.fixture(scope="module")
def parent(world):
    return world.problem_from_question("7+8=?", source="seed")


@pytest.fixture(scope="module")
def child(world, parent):
    return world.problem_from_question(TARGET, source="teacher", parent_id=parent.id)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, parent, child):
    """A Generator trained on one repeated (7+8=? -> 57+38=?) pair, and its metrics."""
    generator = Generator(None, SMALL, MEMORISE, tmp_path_factory.mktemp("generator"), seed=0)
    metrics = generator.train([(parent, child, 0.5)] * 32)
    return generator, metrics


# ----------------------------------------------------------------------------- weighted SFT


def parameter_grads(model, tokenizer, tmp_path, prompts, completions, weights):
    """Gradient of the weighted loss on one batch holding every example."""
    args = sft_args(tmp_path, learning_rate=1e-3, batch_size=len(prompts), epochs=1, warmup_ratio=0.0, seed=0)
    dataset = build_weighted_dataset(prompts, completions, weights, tokenizer.eos_token)
    trainer = make_weighted_sft_trainer(model, tokenizer, dataset, args)
    batch = next(iter(trainer.get_train_dataloader()))
    assert sorted(batch["weight"].tolist()) == sorted(weights)  # the column survived TRL's preprocessing
    model.zero_grad()
    trainer.compute_loss(model, batch).backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def test_a_zero_weight_removes_an_example_from_the_gradient(tmp_path):
    tokenizer = build_char_tokenizer()
    torch.manual_seed(0)
    model = build_tiny_model(SMALL, tokenizer)
    # Loss = mean over the batch of weight x example loss, so [2, 0] over two equals [1] over one.
    both = parameter_grads(
        model,
        tokenizer,
        tmp_path,
        ["failed: 1+2=?\nnew:\n", "failed: 33*4=?\nnew:\n"],
        ["12+5=?", "999-3=?"],
        [2.0, 0.0],
    )
    alone = parameter_grads(model, tokenizer, tmp_path, ["failed: 1+2=?\nnew:\n"], ["12+5=?"], [1.0])
    other = parameter_grads(model, tokenizer, tmp_path, ["failed: 33*4=?\nnew:\n"], ["999-3=?"], [1.0])
    for name in alone:
        torch.testing.assert_close(both[name], alone[name], rtol=1e-4, atol=1e-6)
    assert any(not torch.allclose(alone[name], other[name]) for name in alone)


def completion_loss(model, tokenizer, prompt, completion):
    ids = tokenizer(prompt)["input_ids"]
    target = tokenizer(completion)["input_ids"] + [tokenizer.eos_token_id]
    with torch.no_grad():
        logits = model(torch.tensor([ids + target])).logits[0]
    return float(torch.nn.functional.cross_entropy(logits[len(ids) - 1 : -1], torch.tensor(target)))


def test_training_lowers_the_loss_of_weighted_examples_only(tmp_path):
    tokenizer = build_char_tokenizer()
    torch.manual_seed(0)
    model = build_tiny_model(SMALL, tokenizer)
    kept, dropped = ("failed: 1+2=?\nnew:\n", "12+5=?"), ("failed: 33*4=?\nnew:\n", "999-3=?")
    before = [completion_loss(model, tokenizer, *pair) for pair in (kept, dropped)]
    dataset = build_weighted_dataset(
        [kept[0], dropped[0]] * 8, [kept[1], dropped[1]] * 8, [1.0, 0.0] * 8, tokenizer.eos_token
    )
    args = sft_args(tmp_path, learning_rate=1e-2, batch_size=4, epochs=3, warmup_ratio=0.0, seed=0)
    make_weighted_sft_trainer(model, tokenizer, dataset, args).train()
    after = [completion_loss(model, tokenizer, *pair) for pair in (kept, dropped)]
    assert after[0] < 0.6 * before[0]
    assert before[0] - after[0] > 2 * (before[1] - after[1])


def test_all_zero_weights_leave_the_model_unchanged(tmp_path):
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(SMALL, tokenizer)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    dataset = build_weighted_dataset(["a\n", "b\n"], ["1+1=?", "2+2=?"], [0.0, 0.0], tokenizer.eos_token)
    args = sft_args(tmp_path, learning_rate=1e-2, batch_size=2, epochs=2, warmup_ratio=0.0, seed=0)
    make_weighted_sft_trainer(model, tokenizer, dataset, args).train()
    assert all(torch.equal(p.detach(), start[name]) for name, p in model.named_parameters())


def test_weights_must_be_finite_and_non_negative():
    with pytest.raises(ValueError, match="weight 1 is -0.5"):
        build_weighted_dataset(["a", "b"], ["x", "y"], [1.0, -0.5], "<eos>")
    with pytest.raises(ValueError, match="equally many"):
        build_weighted_dataset(["a"], ["x", "y"], [1.0, 1.0], "<eos>")


# ----------------------------------------------------------------------------- the Generator


def test_sft_format_is_short_printable_ascii(parent, child, tmp_path):
    generator = Generator(None, SMALL, MEMORISE, tmp_path, seed=0)
    prompt, target = generator.prompt_for_parent(parent), generator.target_for(child)
    assert prompt == "failed: 7+8=?\nnew:\n" and target == TARGET
    assert all(32 <= ord(c) < 127 or c == "\n" for c in prompt + target)


def test_training_changes_every_parameter_and_bumps_the_version(trained, tmp_path):
    generator, metrics = trained
    fresh = Generator(None, SMALL, MEMORISE, tmp_path, seed=0)  # the same seed gives the same initial weights
    trained_params = dict(generator.model.named_parameters())
    unchanged = [name for name, p in fresh.model.named_parameters() if torch.equal(p, trained_params[name])]
    assert unchanged == []
    assert generator.version == 1 and metrics["version"] == 1
    assert metrics["examples"] == 32 and metrics["steps"] == 96 and metrics["loss"] > 0
    assert metrics["mean_weight"] == pytest.approx(1.0)  # rate 0.5 is the default centre
    assert fresh.train([])["examples"] == 0 and fresh.version == 0


def test_train_weights_pairs_by_the_gaussian_of_the_solve_rate(tmp_path, parent, child):
    config = GeneratorConfig(epochs=1, batch_size=4, usefulness_center=0.5, usefulness_width=0.25)
    generator = Generator(None, SMALL, config, tmp_path, seed=0)
    metrics = generator.train([(parent, child, 0.0), (parent, child, 0.75)])
    expected = (gaussian_usefulness(0.0, 0.5, 0.25) + gaussian_usefulness(0.75, 0.5, 0.25)) / 2
    assert metrics["mean_weight"] == pytest.approx(expected)
    with pytest.raises(ValueError, match=f"problem {child.id}\\): solve rate 1.5"):
        generator.train([(parent, child, 1.5)])


def test_propose_keeps_oracle_valid_problems_and_rejects_repeats(trained, world, parent):
    generator, _ = trained
    problems, rejected = generator.propose([parent], 6, world, round=3)
    assert len(problems) + len(rejected) == 6
    assert TARGET in [p.question for p in problems]
    for problem in problems:
        assert world.check(problem) is None  # answer and trace agree with the oracle
        assert (
            problem.source,
            problem.parent_id,
            problem.model_version,
            problem.created_by,
            problem.round_created,
        ) == ("generator", parent.id, 1, "generator", 3)
    assert len({p.question for p in problems}) == len(problems)
    for draft in rejected:
        assert draft.source == "generator" and draft.parent_id == parent.id and draft.round == 3
        assert draft.reason in REASONS and draft.detail
        if draft.text == TARGET:
            assert (draft.reason, draft.detail) == ("duplicate", "proposed earlier in this batch")
    assert any(d.reason == "duplicate" for d in rejected)


def test_without_an_oracle_drafts_come_back_unlabelled_with_their_parents_place(trained, parent):
    """A world without an oracle (a dataset): the drafts await the labeller's vote (llm_labels.py)."""
    generator, _ = trained
    seed = parent.model_copy(update={"family": "gsm8k_train", "level": 2, "concepts": ["addition"]})
    problems, rejected = generator.propose([seed], 6, None, round=3)
    assert TARGET in [p.question for p in problems] and len(problems) + len(rejected) == 6
    for problem in problems:
        assert (problem.answer, problem.answer_source, problem.vote_share) == ("", "model", None)
        assert (problem.family, problem.level, problem.concepts) == ("gsm8k_train", 2, ["addition"])
        assert (problem.parent_id, problem.model_version, problem.round_created) == (seed.id, 1, 3)
    assert {d.reason for d in rejected} <= REASONS - {"unparseable"}  # nothing is parsed without an oracle


def test_a_proposal_equal_to_its_parent_is_a_duplicate(trained, world):
    generator, _ = trained
    same = world.problem_from_question(TARGET, source="seed")
    problems, rejected = generator.propose([same], 4, world, round=1)
    assert TARGET not in [p.question for p in problems]
    assert ("duplicate", "same question as its parent") in {(d.reason, d.detail) for d in rejected if d.text == TARGET}


def test_an_untrained_model_writes_garbage_that_is_rejected_with_a_reason(world, parent, tmp_path):
    generator = Generator(None, SMALL, MEMORISE, tmp_path, seed=0)
    other = world.problem_from_question("12*3=?", source="seed")
    problems, rejected = generator.propose([parent, other], 8, world, round=2)
    assert problems == []
    assert len(rejected) == 8
    assert [d.parent_id for d in rejected] == [parent.id, other.id] * 4  # parents are cycled
    assert {d.reason for d in rejected} <= REASONS
    assert {"too_long", "unparseable"} <= {d.reason for d in rejected}
    unparseable = next(d for d in rejected if d.reason == "unparseable")
    assert unparseable.detail.startswith("oracle: ")
    assert generator.propose([parent], 0, world, round=2) == ([], [])
    with pytest.raises(ValueError, match="at least one parent"):
        generator.propose([], 1, world, round=2)


def test_save_and_load_round_trip(trained, world, parent, tmp_path):
    generator, _ = trained
    folder = tmp_path / "checkpoint"
    generator.save(folder)
    generator.save(folder)  # replacing a checkpoint works and leaves no temporary folders
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    restored = Generator(None, SMALL, MEMORISE, tmp_path / "work", seed=0).load(folder)
    assert restored.version == generator.version == 1
    original = dict(generator.model.named_parameters())
    assert all(torch.equal(p, original[name]) for name, p in restored.model.named_parameters())
    assert restored.propose([parent], 4, world, round=5) == generator.propose([parent], 4, world, round=5)
    with pytest.raises(ValueError, match="no Generator checkpoint"):
        restored.load(tmp_path / "missing")


def test_the_role_answers_its_checkpoint_and_resumes_from_it(tmp_path, parent, child):
    config = Config.model_validate(
        {"model": {"tiny": SMALL.model_dump()}, "generator": {"epochs": 1, "batch_size": 2, "max_new_tokens": 8}}
    )
    role = GeneratorRole(config, tmp_path / "node-a")
    metrics, checkpoint = role.train([])
    assert metrics["examples"] == 0 and checkpoint is None
    _, checkpoint = role.train([(parent, child, 0.5)] * 2)
    assert role.version == 1 and checkpoint is not None and "generator.json" in checkpoint.files
    resumed = GeneratorRole(config, tmp_path / "node-b")  # another node: only the files it is sent
    assert resumed.restore(1, checkpoint) == 1
    problems, rejected = resumed.propose([parent], 2, round=7)
    assert len(problems) + len(rejected) == 2
    assert all(p.model_version == 1 for p in problems) and all(d.round == 7 for d in rejected)


def test_on_a_real_model_the_generator_trains_and_saves_only_a_lora_adapter(base_path, tmp_path, parent, child, world):
    """`model.kind: hf`: the base weights stay frozen; the checkpoint is an adapter that loads back."""
    from curriculum.config import LoraConfig

    lora = LoraConfig(r=2, alpha=4)
    generator = Generator(
        base_path,
        SMALL,
        GeneratorConfig(epochs=2, batch_size=2, max_new_tokens=8),
        tmp_path / "work",
        seed=0,
        lora_cfg=lora,
    )
    before = {name: p.detach().clone() for name, p in generator.model.named_parameters()}
    generator.train([(parent, child, 0.5)] * 4)
    after = dict(generator.model.named_parameters())
    changed = {name for name, p in before.items() if not torch.equal(p, after[name])}
    assert changed and all("lora_" in name for name in changed)
    assert any("lora_B" in name for name in changed)
    generator.save(tmp_path / "ckpt")
    assert (tmp_path / "ckpt/adapter_config.json").is_file() and not (tmp_path / "ckpt/model.safetensors").exists()
    restored = Generator(base_path, SMALL, generator.gen_cfg, tmp_path / "work2", seed=0, lora_cfg=lora).load(
        tmp_path / "ckpt"
    )
    assert restored.version == 1
    assert all(torch.equal(p, after[name]) for name, p in restored.model.named_parameters())
    assert restored.propose([parent], 2, world, round=3) == generator.propose([parent], 2, world, round=3)

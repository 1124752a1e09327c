import subprocess
import sys

import pytest
import torch

from rvos.model.rvos import RVOS, ModelSpec, mask_pyramid

H, W = 64, 96


def small_model(one_shot: bool, slots: int = 3) -> RVOS:
    torch.manual_seed(0)
    return RVOS(ModelSpec("resnet18", 16, 3, slots, one_shot)).eval()


def conv_params(c_in: int, c_out: int, k: int = 3) -> int:
    return c_in * c_out * k * k + c_out


def paper_parameter_count(one_shot: bool) -> int:
    """The spec's arithmetic (section 1): ResNet-101 trunk + skips + 4 ConvLSTMs + conv_out."""
    resnet101_without_fc = 44_549_160 - (2048 * 1000 + 1000)
    skips = sum(
        conv_params(c_in, c_out) + 2 * c_out
        for c_in, c_out in [(2048, 128), (1024, 128), (512, 64), (256, 32)]
    )
    mask = 1 if one_shot else 0
    # gate input = level input + 2 * hidden (+1 mask), gate output = 4 * hidden
    cells = sum(
        conv_params(c_in + 2 * hidden + mask, 4 * hidden)
        for c_in, hidden in [(128, 128), (128 + 128, 64), (64 + 64, 32), (32 + 32, 16)]
    )
    return resnet101_without_fc + skips + cells + conv_params(16, 1)


@pytest.mark.parametrize("mode", ["one_shot", "zero_shot"])
def test_model_summary_matches_spec_arithmetic(mode):
    out = (
        subprocess.run(
            [sys.executable, "-m", "rvos.cli", "model-summary", "--preset", "paper", "--mode", mode],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()
    )
    assert out[-1] == f"parameters: {paper_parameter_count(mode == 'one_shot')}"
    assert paper_parameter_count(True) == 49_349_233  # 42.5 M trunk, 3.91 M skips, 2.94 M ConvLSTMs


def test_feature_and_output_shapes():
    model = small_model(one_shot=False)
    feats = model.encode(torch.rand(2, 3, H, W))
    # strides 32, 16, 8, 4 with hidden, hidden, hidden/2, hidden/4 channels
    assert [tuple(f.shape) for f in feats] == [(2, 16, 2, 3), (2, 16, 4, 6), (2, 8, 8, 12), (2, 4, 16, 24)]
    logits, temporal = model.decode(feats, 3, (H, W))
    assert logits.shape == (2, 3, H, W)
    assert len(temporal) == 3 and [h.shape[1] for h in temporal[0]] == [16, 8, 4, 2]
    clip = model(torch.rand(2, 4, 3, H, W), num_slots=3)
    assert clip.shape == (2, 4, 3, H, W)


def test_mask_pyramid_matches_feature_sizes_for_odd_inputs():
    model = small_model(one_shot=True)
    feats = model.encode(torch.rand(1, 3, 61, 93))
    pyramid = mask_pyramid(torch.rand(1, 3, 61, 93))
    assert [p.shape[-2:] for p in pyramid] == [f.shape[-2:] for f in feats]


def test_one_shot_has_one_extra_gate_input_and_needs_masks():
    one, zero = small_model(True), small_model(False)
    for cell_one, cell_zero in zip(one.decoder.cells, zero.decoder.cells):
        assert cell_one.gates.in_channels == cell_zero.gates.in_channels + 1
    feats = one.encode(torch.rand(1, 3, H, W))
    with pytest.raises(ValueError, match="previous masks"):
        one.decode(feats, 2, (H, W))


@torch.no_grad()
def test_previous_mask_steers_its_own_slot_and_later_slots_only():
    model = small_model(one_shot=True, slots=3)
    feats = model.encode(torch.rand(1, 3, H, W))
    masks = torch.zeros(1, 3, H, W)
    base, _ = model.decode(feats, 3, (H, W), masks)
    changed = masks.clone()
    changed[0, 1, 10:40, 20:60] = 1.0  # a mask for slot 1 only
    after, _ = model.decode(feats, 3, (H, W), changed)
    assert torch.equal(base[:, 0], after[:, 0])  # nothing flows backwards to slot 0
    assert not torch.allclose(base[:, 1], after[:, 1])
    assert not torch.allclose(base[:, 2], after[:, 2])  # spatial recurrence slot 1 -> slot 2


@pytest.mark.parametrize("one_shot", [True, False])
@torch.no_grad()
def test_temporal_state_of_a_slot_reaches_that_slot_and_later_ones(one_shot):
    model = small_model(one_shot, slots=3)
    feats = model.encode(torch.rand(1, 3, H, W))
    masks = torch.rand(1, 3, H, W) if one_shot else None
    _, temporal = model.decode(feats, 3, (H, W), masks)
    base, _ = model.decode(feats, 3, (H, W), masks, temporal)
    perturbed = [[h.clone() for h in slot] for slot in temporal]
    perturbed[1] = [h + 0.5 for h in perturbed[1]]
    after, _ = model.decode(feats, 3, (H, W), masks, perturbed)
    assert torch.equal(base[:, 0], after[:, 0])
    assert not torch.allclose(base[:, 1], after[:, 1])
    assert not torch.allclose(base[:, 2], after[:, 2])


@pytest.mark.parametrize("one_shot", [True, False])
@torch.no_grad()
def test_clip_recurrence_flows_forward_in_time_only(one_shot):
    model = small_model(one_shot, slots=2)
    images = torch.rand(1, 3, 3, H, W)
    masks = (torch.rand(1, 3, 2, H, W) > 0.5).float() if one_shot else None
    base = model(images, 2, masks, teacher_forcing=False)
    changed = images.clone()
    changed[:, 1] = torch.rand(3, H, W)  # a different frame 1
    after = model(changed, 2, masks, teacher_forcing=False)
    assert torch.equal(base[:, 0], after[:, 0])
    assert not torch.allclose(base[:, 1], after[:, 1])
    assert not torch.allclose(base[:, 2], after[:, 2])  # frame 2 sees frame 1 through the state


@torch.no_grad()
def test_zero_shot_ignores_given_masks_and_decoding_fewer_slots_changes_nothing():
    model = small_model(False, slots=4)
    images = torch.rand(1, 2, 3, H, W)
    masks = torch.ones(1, 2, 4, H, W)
    assert torch.equal(model(images, 4), model(images, 4, masks))
    assert torch.equal(model(images, 4)[:, :, :2], model(images, 2))


def test_teacher_forcing_feeds_ground_truth_and_gradients_reach_the_encoder():
    model = small_model(True, slots=2).train()
    images = torch.rand(2, 3, 3, H, W)
    masks = (torch.rand(2, 3, 2, H, W) > 0.5).float()
    forced = model(images, 2, masks, teacher_forcing=True)
    free = model(images, 2, masks, teacher_forcing=False)
    assert torch.allclose(forced[:, 0], free[:, 0])  # frame 0 gets its own ground truth either way
    assert not torch.allclose(forced[:, 1], free[:, 1])
    free.sigmoid().mean().backward()
    assert model.encoder.conv1.weight.grad.abs().sum() > 0
    assert model.skips.convs[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("threshold", [0.0, 0.3])
def test_own_predictions_are_fed_back_soft_or_binarized_at_the_threshold(threshold):
    torch.manual_seed(0)
    model = RVOS(ModelSpec("resnet18", 16, 3, 2, True, feedback_threshold=threshold)).eval()
    probs = torch.tensor([0.1, 0.29, 0.31, 0.9]).view(1, 1, 2, 2)
    expected = probs if threshold == 0 else torch.tensor([0.0, 0.0, 1.0, 1.0]).view(1, 1, 2, 2)
    assert torch.equal(model.feedback(probs), expected)

    fed = []
    decode = model.decode
    model.decode = lambda *args: fed.append(args[3]) or decode(*args)
    images = torch.rand(1, 2, 3, H, W)
    logits = model(images, 2, torch.zeros(1, 2, 2, H, W), teacher_forcing=False)
    assert torch.equal(fed[1], model.feedback(torch.sigmoid(logits[:, 0])))


def test_zero_shot_mask_input_starts_empty_and_then_feeds_own_predictions():
    torch.manual_seed(0)
    spec = ModelSpec("resnet18", 16, 3, 2, False, feedback_threshold=0.3, zero_shot_mask_input=True)
    model = RVOS(spec).eval()
    original = small_model(False, slots=2)
    assert spec.takes_masks and not original.spec.takes_masks
    extra = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in original.parameters())
    assert extra == sum(cell.gates.out_channels * 9 for cell in model.decoder.cells)  # one mask channel

    fed = []
    decode = model.decode
    model.decode = lambda *args: fed.append(args[3]) or decode(*args)
    images = torch.rand(1, 3, 3, H, W)
    logits = model(images, 2, torch.ones(1, 3, 2, H, W))  # given masks are ignored in zero-shot
    assert torch.equal(fed[0], torch.zeros(1, 2, H, W))
    assert torch.equal(fed[2], model.feedback(torch.sigmoid(logits[:, 1])))


def test_zero_shot_canvas_is_the_union_of_the_earlier_slots_masks():
    torch.manual_seed(0)
    spec = ModelSpec("resnet18", 16, 3, 3, False, 0.0, 0.3, zero_shot_mask_input=True, zero_shot_canvas=True)
    model = RVOS(spec).eval()
    assert spec.mask_channels == 2 and all(cell.mask_channels == 2 for cell in model.decoder.cells)
    seen = []  # the finest-level mask input of every slot: (N, 2, h, w) = [own previous mask, canvas]
    model.decoder.register_forward_pre_hook(lambda _module, args: seen.append(args[1][-1].clone()))
    with torch.no_grad():
        features = model.encode(torch.rand(1, 3, H, W))
        previous = (torch.rand(1, 3, H, W) > 0.5).float()
        logits, _ = model.decode(features, 3, (H, W), previous)
    fed = model.feedback(torch.sigmoid(logits))  # (1, 3, H, W)
    assert fed[:, :2].sum() > 0  # the untrained slots do cover something, so the test can fail
    for slot in range(3):
        union = fed[:, :slot].amax(dim=1, keepdim=True) if slot else torch.zeros(1, 1, H, W)
        assert torch.equal(seen[slot][:, 1:], mask_pyramid(union)[-1])  # canvas
        assert torch.equal(seen[slot][:, :1], mask_pyramid(previous[:, slot : slot + 1])[-1])  # own mask
    # a slot's output still depends only on the slots before it
    with torch.no_grad():
        fewer, _ = model.decode(features, 2, (H, W), previous[:, :2])
    assert torch.allclose(fewer, logits[:, :2], atol=1e-6)


@pytest.mark.parametrize("one_shot", [True, False])
@torch.no_grad()
def test_a_carried_clip_continues_the_previous_one(one_shot):
    """Truncated BPTT: two clips of 3 frames with a carry give the logits of one 6-frame clip."""
    from rvos.model.rvos import Carry

    model = small_model(one_shot, slots=2)
    images = torch.rand(1, 6, 3, H, W)
    masks = (torch.rand(1, 6, 2, H, W) > 0.5).float() if one_shot else None
    whole = model(images, 2, masks, teacher_forcing=False)
    carry = Carry()
    first = model(images[:, :3], 2, masks[:, :3] if one_shot else None, teacher_forcing=False, carry=carry)
    assert carry.temporal is not None and not carry.temporal[0][0].requires_grad
    second = model(images[:, 3:], 2, masks[:, 3:] if one_shot else None, teacher_forcing=False, carry=carry)
    assert torch.allclose(torch.cat([first, second], dim=1), whole, atol=1e-5)
    fresh = model(images[:, 3:], 2, masks[:, 3:] if one_shot else None, teacher_forcing=False)
    assert not torch.allclose(fresh[:, 0], whole[:, 3])  # without the carry, frame 3 starts over


def test_target_references_and_similarity_maps_single_out_each_object():
    """A slot's `own` map is 1 where the features are its object's, `other` is the best of the other
    references (at least 0), and a slot without an object changes no one's maps."""
    from rvos.model.target import similarity_maps, target_references

    h, w = 8, 12
    looks = torch.eye(3)  # three orthogonal feature vectors: background, object 1, object 2
    ids = torch.zeros(h, w, dtype=torch.long)
    ids[1:4, 1:5], ids[4:7, 6:11] = 1, 2
    feature = looks[ids].permute(2, 0, 1)[None]  # (1, 3, h, w)
    masks = torch.stack([ids == 1, ids == 2, torch.zeros_like(ids, dtype=torch.bool)])[None].float()
    references = target_references([feature], masks)  # slot 2 holds no object
    assert references[0].shape == (1, 4, 3)
    assert torch.allclose(references[0][0, :3], looks, atol=1e-6)
    assert torch.equal(references[0][0, 3], torch.zeros(3))
    (maps,) = similarity_maps([feature], references)  # (1, 3 slots, 2, h, w)
    own, other = maps[0, :, 0], maps[0, :, 1]
    assert torch.allclose(own[0], (ids == 1).float()) and torch.allclose(own[1], (ids == 2).float())
    assert torch.equal(own[2], torch.zeros(h, w))  # an empty slot is similar to nothing
    assert torch.allclose(other[0], (ids != 1).float())  # object 2 and the background are "other"
    assert torch.allclose(other[2], torch.ones(h, w))  # for the empty slot every place is someone's
    (fewer,) = similarity_maps([feature], [references[0][:, :3]])  # decoding 2 slots: same maps
    assert torch.equal(fewer, maps[:, :2])


@torch.no_grad()
def test_target_similarity_needs_references_and_reads_them():
    torch.manual_seed(0)
    model = RVOS(ModelSpec("resnet18", 16, 3, 2, True, target_similarity=True)).eval()
    assert all(cell.mask_channels == 3 for cell in model.decoder.cells)  # mask + own + other
    feats = model.encode(torch.rand(1, 3, H, W))
    masks = torch.zeros(1, 2, H, W)
    masks[0, 0, 10:30, 10:40] = 1.0
    with pytest.raises(ValueError, match="references"):
        model.decode(feats, 2, (H, W), masks)
    references = model.references(feats, masks)
    base, _ = model.decode(feats, 2, (H, W), masks, None, references)
    shifted = model.references(feats, masks.roll(30, dims=3))  # slot 0's object looks like elsewhere
    after, _ = model.decode(feats, 2, (H, W), masks, None, shifted)
    assert not torch.allclose(base[:, 0], after[:, 0])


def test_references_from_another_frame_replace_the_clips_where_the_object_is_there():
    """Training with `train.reference_frame: video`: a slot's reference comes from the video's first
    frame if its object is in it, else from the clip's first frame; the background from the former."""
    from rvos.model.target import prefer_references

    preferred = [torch.full((2, 4, 3), 1.0)]  # (N, background + 3 slots, C)
    fallback = [torch.full((2, 4, 3), 2.0)]
    present = torch.tensor([[True, False, True], [False, False, False]])
    (merged,) = prefer_references(preferred, fallback, present)
    assert torch.equal(merged[:, 0], torch.ones(2, 3))  # background
    assert torch.equal(merged[0, 1:, 0], torch.tensor([1.0, 2.0, 1.0]))
    assert torch.equal(merged[1, 1:, 0], torch.tensor([2.0, 2.0, 2.0]))


@torch.no_grad()
def test_forward_takes_the_references_from_the_given_reference_frame(monkeypatch):
    torch.manual_seed(0)
    model = RVOS(ModelSpec("resnet18", 16, 3, 2, True, target_similarity=True)).eval()
    images = torch.rand(1, 3, 3, H, W)
    given = torch.zeros(1, 3, 2, H, W)
    given[:, :, 0, 10:30, 10:40] = 1.0
    given[:, :, 1, 30:50, 50:80] = 1.0
    plain = model(images, 2, given, teacher_forcing=False)
    # the clip's own first frame as the reference frame: the same references, the same logits
    same = model(images, 2, given, False, None, images[:, 0], given[:, 0])
    assert torch.allclose(plain, same, atol=1e-5)
    # another frame as the reference: the references, and so the logits, change
    other = model(images, 2, given, False, None, torch.rand(1, 3, H, W), given[:, 0])
    assert not torch.allclose(plain, other, atol=1e-3)
    # which slots' objects the reference frame holds decides where their references come from
    import rvos.model.rvos as rvos_module

    seen = []
    real = rvos_module.prefer_references
    monkeypatch.setattr(
        rvos_module, "prefer_references", lambda p, f, present: seen.append(present) or real(p, f, present)
    )
    only_first = given[:, 0].clone()
    only_first[:, 1] = 0.0
    model(images, 2, given, False, None, images[:, 0], only_first)
    assert seen[0].tolist() == [[True, False]]

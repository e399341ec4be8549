"""Configurations of the methods that answer by generation on a causal LM."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig

PROMPT_INITS = ("vocab", "labels", "normal")


def llm_prompt_init(default: str = "vocab") -> object:
    return o.option(default, "initialisation of a new prompt: 'vocab' (the embeddings of random common "
                             "tokens, as Lester et al.), 'labels' (the token embeddings of the experience's "
                             "answer texts, as Lester et al.'s class-label init; cut or completed with "
                             "'vocab' rows to prompt_length) or 'normal' N(0, s^2), s = prompt_init_scale",
                    o.one_of(PROMPT_INITS))


def rank_weight_option(default: float) -> object:
    return o.option(default, "weight of a ranking loss added to the answer loss: the cross-entropy of the "
                             "input's class among the open experience's classes, their answer scores as "
                             "logits (trains the prompt to rank its own answer first; costs the scoring "
                             "of every such answer per step)", o.non_negative)


@dataclass
class GenerativeConfig(MethodConfig):
    """Options of every method that scores answer texts (none but the optimizer's)."""


@dataclass
class GenerativePromptConfig(GenerativeConfig):
    """A soft prompt in front of the templated input, trained on the answer tokens.

    Defaults follow the prompt tuning papers rather than a search here: 20 tokens
    initialised from vocabulary embeddings (Lester et al., EMNLP 2021) and Adam at
    lr 3e-2 (HF PEFT's prompt tuning examples); they were not chosen on validation
    data yet.
    """

    lr: float = o.lr(3e-2)
    prompt_length: int = o.prompt_length(20)
    prompt_init: str = llm_prompt_init()
    prompt_init_scale: float = o.prompt_init_scale(0.02)
    rank_weight: float = rank_weight_option(0.0)


@dataclass
class GenerativePromptTuningConfig(GenerativePromptConfig):
    """One soft prompt shared by every experience, trained through the sequence (causal LM).

    Prompt tuning (Lester et al., "The Power of Scale for Parameter-Efficient Prompt
    Tuning", EMNLP 2021) on a frozen causal LM: the prompt is trained on each experience
    in turn to make the model say the answer text of the input's class; prediction ranks
    every seen class by its answer's likelihood. Nothing protects earlier experiences: the
    forgetting reference for the pool methods.
    """


@dataclass
class ProgressivePromptsConfig(GenerativePromptConfig):
    """Progressive Prompts (Razdaibiedina et al., ICLR 2023) on a frozen causal LM.

    Each experience trains a new prompt put in front of the frozen prompts of the earlier
    ones (``[P_t, ..., P_1, input]``); the earlier prompts never change, so what they
    learnt stays. Prediction (class-incremental, no task label) scores every seen class's
    answer under the whole sequence of prompts. The paper's 10 tokens per task.
    """

    prompt_length: int = o.prompt_length(10, "tokens of each experience's prompt")


@dataclass
class GenerativeGrowingPoolConfig(GenerativePromptConfig):
    """Per-experience prompts routed by a key per class (causal LM).

    Each experience trains a prompt of its own on its classes' answers (the answer loss
    plus ``rank_weight`` times the ranking loss among its classes), then freezes it.
    The keys: a ridge classifier on random ReLU features of the frozen query (the LLM's
    own pooled hidden states of the last ``layers`` layers, as ``ranpac``), one readout
    column per class, searched in the :class:`~cl_prompts.index.KeyIndex` (faiss when
    installed). A test input is scored under the prompts of the ``candidates`` tasks whose
    classes' keys are nearest; each candidate's classes score their answer likelihood
    under its prompt plus ``route_weight`` times their routing logit; the best class wins.
    """

    # candidates 3 and route_weight 30: the best mean over five validation grids
    # (docs/llm.md#the-default-route_weight)
    candidates: int = o.option(3, "tasks tried per input (each costs one prompted pass and its "
                                  "classes' answers at test)", o.positive_int)
    # 1 against 0: better on few-shot HWU64 validation after 1 and after 3 epochs
    # (docs/llm.md#what-the-epochs-and-the-ranking-loss-are-worth)
    rank_weight: float = rank_weight_option(1.0)
    route_weight: float = o.option(30.0, "weight of the routing logits added to the answer scores",
                                   o.non_negative)
    ridge: float = o.option(100.0, "ridge of the routing classifier (frozen query)", o.positive)
    projection_dim: int = o.projection_dim(10000)
    layers: int = o.feature_layers(4)
    index: str = o.index()
    init_from_previous: bool = o.option(True, "a new task's prompt starts from the previous task's "
                                              "(not with prompt_init='labels': each starts from its own "
                                              "answer texts)", o.boolean)


@dataclass
class GenerativeL2PConfig(GenerativePromptConfig):
    """Learning to Prompt (Wang et al., CVPR 2022) on a frozen causal LM.

    A shared pool of ``pool_size`` prompts, each with a key. Every input takes the
    ``top_k`` prompts whose keys best match its frozen query (cosine; the LLM's own
    pooled hidden states, or a query encoder's) in front of its templated tokens, and
    the seen classes' answers are ranked under them. The answer loss trains the chosen
    prompts; a key-matching loss (``pull_coef``) pulls the chosen keys to the query. The
    whole pool keeps training in every experience, as in the paper. The paper's M = 10
    prompts of 5 tokens, top 5 (and lambda 0.1); here top 4 of 10 prompts of 5 tokens,
    20 prompt tokens per input as the other methods; not chosen on validation data yet.
    """

    prompt_length: int = o.prompt_length(5, "L_p, tokens per prompt")
    pool_size: int = o.option(10, "M, prompts in the shared pool", o.positive_int)
    top_k: int = o.option(4, "N, prompts chosen per input (N * L_p tokens in front of it)", o.positive_int)
    pull_coef: float = o.pull_coef(0.1)
    index: str = o.index()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.top_k > self.pool_size:
            raise ValueError(f"top_k must be <= pool_size ({self.pool_size}), got {self.top_k}")


@dataclass
class GenerativeFinetuneConfig(GenerativeConfig):
    """Sequential fine-tuning of every weight of the causal LM on the answer tokens (no prompt).

    The forgetting reference among the generative baselines ("Learn or Recall?", ACL 2024,
    calls it SEQ): a private copy of the LLM trains on each experience in turn to say its
    classes' answers, with nothing to protect earlier ones; prediction ranks every seen
    class's answer. AdamW at lr 2e-5, weight decay 0.01 (the encoder ``finetune``'s,
    in the range of LLM fine-tuning); not chosen on validation data yet.
    """

    lr: float = o.option(2e-5, "learning rate of the LLM's weights", o.positive)
    weight_decay: float = o.weight_decay(0.01)
    optimizer: str = o.optimizer("adamw")


@dataclass
class ZeroShotConfig(GenerativeConfig):
    """No training: the frozen instruction-tuned LM ranks the seen classes' answer texts.

    The reference any trained method must beat: the chat template wraps the input and
    each seen class's answer is scored after it. With ``list_answers`` the input is preceded
    by the seen classes' answer texts as plain words ("Possible answers: card arrival, ...";
    the zero-shot instruction baseline of "Learn or Recall?", ACL 2024), so the model knows
    what it may say; without, by nothing.
    """

    list_answers: bool = o.option(True, "put the seen classes' answer texts in front of each input "
                                        "(the prompt grows with the classes seen)", o.boolean)

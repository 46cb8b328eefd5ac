"""Offline stand-ins with the paper's real model classes and random weights, small enough for CI:

* ``xlmr_folder``: a bare transformers folder like FacebookAI/xlm-roberta-base (``XLMRobertaModel``, XLM-R's exact
  config keys and the real XLM-R tokenizer that the offline extra ships; 2 layers of width 32). Loaded as the hub
  model is: sentence-transformers' mean pooling, and no prompts of its own.
* ``labse_folder``: a sentence-transformers folder shaped like sentence-transformers/LaBSE: ``BertModel``, CLS
  pooling, a Dense layer with tanh, Normalize, a cased WordPiece tokenizer, no prompts.

The first real GPU run must not be the first to meet their pooling, their missing prompts or their tokenizers.
"""
import string
from pathlib import Path

WORDS = ("the of and in to is was a for on with as by at from that which this it are be or an his her their "
         "river city mountain lake forest bridge castle harbour valley island query passage question answer place "
         "old built visitors summer story number when where who what does have has").split()


def build_xlmr(dest: Path, seed: int = 0) -> Path:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    from hbkit.encoders.load import xlmr_tokenizer_file

    tok = XLMRobertaTokenizerFast(tokenizer_file=str(xlmr_tokenizer_file()), model_max_length=512)
    torch.manual_seed(seed)
    cfg = XLMRobertaConfig(vocab_size=250_002, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                           bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)
    XLMRobertaModel(cfg, add_pooling_layer=False).save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


def build_labse(dest: Path, seed: int = 0) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    hf = dest.parent / (dest.name + "-hf")
    hf.mkdir(parents=True)
    chars = string.ascii_letters + string.digits + string.punctuation + "äöüßéèáíóúñ¿¡çàâêîôû"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *chars, *("##" + c for c in chars)]
    (hf / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tok = BertTokenizerFast(vocab_file=str(hf / "vocab.txt"), do_lower_case=False, model_max_length=512)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512, type_vocab_size=2, pad_token_id=0)
    BertModel(cfg).save_pretrained(hf)
    tok.save_pretrained(hf)
    word = st_models.Transformer(str(hf), max_seq_length=256)
    pool = st_models.Pooling(32, pooling_mode="cls")
    dense = st_models.Dense(32, 32, activation_function=torch.nn.Tanh())
    SentenceTransformer(modules=[word, pool, dense, st_models.Normalize()]).save(str(dest))
    return dest

#!/usr/bin/python3
"""Train the tiny SentencePiece BPE tokenizer used by tests (fixtures/models/tiny-tokenizer/).

Run once with Debian's python3-sentencepiece (0.1.97); the outputs are committed, so CI never needs Python:
    /usr/bin/python3 scripts/tokenizer/train_tiny_tokenizer.py
Then regenerate reference ids with scripts/tokenizer/reference_ids.py.

Layout mirrors InternVL2-2B (volmo-model.md 3.5): <unk>/<s>/</s> at 0/1/2, byte pieces, normal pieces, the six
InternLM2 chat tokens as the LAST six SentencePiece pieces (in the real model's id order), and the nine InternVL
tokens as HF added tokens beyond the SentencePiece vocabulary (ids vocab..vocab+8), declared only in
tokenizer_config.json's added_tokens_decoder.
"""
import json
import os
import shutil
import sys
import tempfile

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
OUT = os.path.join(ROOT, 'fixtures', 'models', 'tiny-tokenizer')

# Real ids 92538..92543, in that order.
CHAT_TOKENS = ['<|plugin|>', '<|interpreter|>', '<|action_end|>', '<|action_start|>', '<|im_end|>', '<|im_start|>']
# Real ids 92544..92552, in that order (beyond the SentencePiece vocabulary).
IMAGE_TOKENS = ['<img>', '</img>', '<IMG_CONTEXT>', '<quad>', '</quad>', '<ref>', '</ref>', '<box>', '</box>']
VOCAB_SIZE = 800


def read_varint(buf, pos):
    result = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def split_fields(buf):
    """Top-level protobuf fields as (field_number, raw_bytes_including_tag)."""
    fields = []
    pos = 0
    while pos < len(buf):
        start = pos
        tag, pos = read_varint(buf, pos)
        wire = tag & 7
        if wire == 0:
            _, pos = read_varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            n, pos = read_varint(buf, pos)
            pos += n
        elif wire == 5:
            pos += 4
        else:
            raise ValueError('unsupported wire type %d' % wire)
        fields.append((tag >> 3, buf[start:pos]))
    return fields


def piece_string(raw_field):
    _, pos = read_varint(raw_field, 0)
    _, pos = read_varint(raw_field, pos)
    for num, sub in split_fields(raw_field[pos:]):
        if num == 1:
            _, p = read_varint(sub, 0)
            n, p = read_varint(sub, p)
            return sub[p:p + n].decode('utf-8')
    raise ValueError('piece without string')


def move_chat_tokens_last(model_bytes):
    fields = split_fields(model_bytes)
    pieces = [f for f in fields if f[0] == 1]
    others = [f for f in fields if f[0] != 1]
    chat = {piece_string(raw): raw for _, raw in pieces if piece_string(raw) in CHAT_TOKENS}
    assert sorted(chat) == sorted(CHAT_TOKENS), chat.keys()
    rest = [raw for _, raw in pieces if piece_string(raw) not in CHAT_TOKENS]
    ordered = rest + [chat[t] for t in CHAT_TOKENS]
    return b''.join(ordered) + b''.join(raw for _, raw in others)


def added(content):
    return {'content': content, 'lstrip': False, 'normalized': False, 'rstrip': False,
            'single_word': False, 'special': True}


def main():
    write(OUT, add_dummy_prefix=True)
    # Variant for the converter's add_dummy_prefix=false path (InternLM2's own flag is not documented).
    write(os.path.join(OUT, 'no-dummy-prefix'), add_dummy_prefix=False)


def write(out, add_dummy_prefix):
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # Relative paths: SentencePiece stores them in trainer_spec, keep the output byte-reproducible.
        shutil.copy(os.path.join(HERE, 'corpus.txt'), os.path.join(tmp, 'corpus.txt'))
        cwd = os.getcwd()
        os.chdir(tmp)
        prefix = 'tiny'
        spm.SentencePieceTrainer.train(
            input='corpus.txt', model_prefix=prefix, vocab_size=VOCAB_SIZE,
            model_type='bpe', byte_fallback=True, character_coverage=0.9995,
            user_defined_symbols=CHAT_TOKENS, normalization_rule_name='identity',
            remove_extra_whitespaces=False, add_dummy_prefix=add_dummy_prefix, split_digits=True,
            allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
            num_threads=1, minloglevel=2)
        with open(prefix + '.model', 'rb') as f:
            model = move_chat_tokens_last(f.read())
        os.chdir(cwd)
    path = os.path.join(out, 'tokenizer.model')
    with open(path, 'wb') as f:
        f.write(model)

    sp = spm.SentencePieceProcessor(model_file=path)
    n = sp.get_piece_size()
    ids = {t: sp.piece_to_id(t) for t in CHAT_TOKENS}
    assert list(ids.values()) == list(range(n - 6, n)), ids
    expect = (['▁'] if add_dummy_prefix else []) + ['<|im_end|>']
    assert sp.encode('<|im_end|>', out_type=str) == expect, sp.encode('<|im_end|>', out_type=str)

    decoder = {'0': added('<unk>'), '1': added('<s>'), '2': added('</s>')}
    for t in CHAT_TOKENS:
        decoder[str(ids[t])] = added(t)
    for i, t in enumerate(IMAGE_TOKENS):
        decoder[str(n + i)] = added(t)
    config = {
        'add_bos_token': True,
        'add_eos_token': False,
        'added_tokens_decoder': decoder,
        'additional_special_tokens': CHAT_TOKENS[::-1] + IMAGE_TOKENS,
        'bos_token': '<s>',
        'clean_up_tokenization_spaces': False,
        'eos_token': '</s>',
        'model_max_length': 8192,
        'pad_token': '</s>',
        'tokenizer_class': 'InternLM2Tokenizer',
        'unk_token': '<unk>',
    }
    with open(os.path.join(out, 'tokenizer_config.json'), 'w', encoding='utf-8') as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
        f.write('\n')
    print('pieces', n, 'chat ids', ids, 'image ids', list(range(n, n + 9)), file=sys.stderr)


if __name__ == '__main__':
    main()

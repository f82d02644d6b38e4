#!/usr/bin/python3
"""Reference token ids from real SentencePiece for the tokenizer parity tests.

    /usr/bin/python3 scripts/tokenizer/reference_ids.py   # writes fixtures/models/tiny-tokenizer/reference-ids.json

Emulates the slow HF InternLM2Tokenizer (what VOLMO's evaluation uses): the text is split on the added tokens of
tokenizer_config.json (longest match first), each remaining segment is encoded with sp.encode() (which adds the
dummy-prefix "▁" per segment), special tokens map to their single ids. No BOS here (add_special_tokens=False).
"""
import json
import os
import random

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(HERE, '..', '..', 'fixtures', 'models', 'tiny-tokenizer')

CONDITIONS = [
    'age-related macular degeneration (AMD)', 'diabetic retinopathy', 'retinal drusen', 'retinal hemorrhage',
    'hypertensive retinopathy', 'increased cup-to-disc ratio', 'macular edema', 'myopic fundus changes',
    'choroidal nevus', 'retinal vascular occlusion', 'retinal scarring', 'glaucoma',
]
BOOL = ('<image>\nThis is a colorful fundus image. Please tell me whether this image shows {}. '
        'Answer in format: TRUE or FALSE.')
DR = ('<image>\nHere is a high-resolution retina image which might have been taken under a variety of imaging '
      'conditions. Rate the presence of diabetic retinopathy in each image on a scale of 0 to 4, according to the '
      'following scale:\n\n0 - No DR\n1 - Mild\n2 - ModeRate\n3 - Severe\n4 - Proliferative DR\n\nYour response '
      'should only contain a single number, representing your rating.')
MH = ('<image>\nThis is an OCT image of ophthalmology. What is the macular hole stage of this image? '
      'Please just use a single number. ')
DESC = 'What is shown in this medical image?'
SYS2 = '你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。'
SYS25 = '你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。'
ASSESS = ('#' * 50 + '\n### Task: Provide Differential Diagnoses ###\n' + '#' * 50 + '\nYou are an ophthalmologist. '
          'You are given the clinical profile of a patient.\n[PATIENT CLINICAL PROFILE]\nAge: 58; Sex: F\n'
          '[SYMPTOMS]\nBlurred vision OD x 3 weeks.\n[DIFFERENTIAL DIAGNOSIS]\n1. Diagnosis: [name]; '
          'Severity: [severity]')


def chat(sys_msg, question, sep):
    return ('<|im_start|>system\n' + sys_msg + sep + '<|im_start|>user\n' + question + sep
            + '<|im_start|>assistant\n')


def cases():
    out = []
    for c in CONDITIONS:
        out.append(('bool: ' + c, BOOL.format(c)))
    out += [
        ('stage: DR grading', DR),
        ('stage: macular hole (trailing space)', MH),
        ('imgdesc', '<image>\n' + DESC),
        ('imgdesc bare', DESC),
        ('assessplan', ASSESS),
        ('system message internvl2', SYS2),
        ('system message internvl2.5', SYS25),
        ('chat internlm2-chat', chat(SYS2, BOOL.format('glaucoma'), '<|im_end|>')),
        ('chat internvl2_5', chat(SYS25, DR, '<|im_end|>\n')),
        ('expanded image', '<img>' + '<IMG_CONTEXT>' * 12 + '</img>\nWhat is shown?'),
        ('multi image', 'Image-1: <img><IMG_CONTEXT><IMG_CONTEXT></img>\nImage-2: <img><IMG_CONTEXT></img>\n' + DESC),
        ('accents', 'Café-au-lait spots; naïve Behçet patient, Sjögren syndrome, façade, élan, Ångström, µm.'),
        ('digits', 'VA 20/40 OD, IOP 21 mmHg, CDR 0.65, HbA1c 7.8%, 2024-03-15, 1234567890.'),
        ('emoji', 'Patient is happy 😀 with vision 👁️ and 🩺 check ✅.'),
        ('unseen chinese', '视网膜色素变性与葡萄膜炎鉴别诊断：饕餮龘。'),
        ('whitespace', '  two leading spaces,  double  spaces,\ttab\nnewline  \n\n trailing '),
        ('single space', ' '),
        ('newline only', '\n'),
        ('special tokens alone', '<s></s><unk><|im_start|><|im_end|><|plugin|><|interpreter|><|action_start|>'
                                 '<|action_end|><img></img><IMG_CONTEXT><quad></quad><ref></ref><box></box>'),
        ('special tokens glued', 'abc<|im_end|>def <|im_start|> ghi<IMG_CONTEXT>jkl<ref>optic disc</ref>'
                                 '<box>[[10, 20, 30, 40]]</box>'),
        ('near-special text', '<im_end> <|im_end| <IMG_CONTEXT <img </im g> |> <|'),
        ('answers', 'TRUE.'),
        ('answers false', 'FALSE'),
        ('digit answer', '3'),
    ]
    return out


def random_cases():
    rnd = random.Random(20240611)
    alphabet = ('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-()[]/%' * 3
                + '  \n\téèüçñµ°±视网膜黄斑眼底青光眼模型。，饕😀👁️🩺' + '<>|')
    words = ['<|im_end|>', '<|im_start|>', '<img>', '</img>', '<IMG_CONTEXT>', 'retina', 'macular', 'TRUE', 'FALSE',
             'diabetic', 'fundus', 'image', 'the', ' ', '\n']
    out = []
    for i in range(40):
        parts = []
        for _ in range(rnd.randint(1, 25)):
            parts.append(rnd.choice(words) if rnd.random() < 0.3 else
                         ''.join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 8))))
        out.append(('random %d' % i, ''.join(parts)))
    return out


def split_added(text, added):
    toks = sorted(added, key=len, reverse=True)
    parts, buf, i = [], '', 0
    while i < len(text):
        m = next((t for t in toks if text.startswith(t, i)), None)
        if m is None:
            buf += text[i]
            i += 1
            continue
        if buf:
            parts.append(buf)
            buf = ''
        parts.append((m,))
        i += len(m)
    if buf:
        parts.append(buf)
    return parts


def main():
    write(DIR, cases() + random_cases() + [('corpus %d' % i, line.rstrip('\n')) for i, line in
                                           enumerate(open(os.path.join(HERE, 'corpus.txt'), encoding='utf-8'))])
    write(os.path.join(DIR, 'no-dummy-prefix'), cases())


def write(DIR, all_cases):
    sp = spm.SentencePieceProcessor(model_file=os.path.join(DIR, 'tokenizer.model'))
    with open(os.path.join(DIR, 'tokenizer_config.json'), encoding='utf-8') as f:
        cfg = json.load(f)
    added = {v['content']: int(k) for k, v in cfg['added_tokens_decoder'].items()}
    rows = []
    for name, text in all_cases:
        ids, pieces = [], []
        for part in split_added(text, added):
            if isinstance(part, tuple):
                ids.append(added[part[0]])
                pieces.append(part[0])
            else:
                ids += sp.encode(part)
                pieces += sp.encode(part, out_type=str)
        rows.append({'name': name, 'text': text, 'ids': ids, 'pieces': pieces,
                     'spDecoded': sp.decode([i for i in ids if i < sp.get_piece_size()])})
    meta = {'generator': 'scripts/tokenizer/reference_ids.py', 'sentencepiece': spm.__version__,
            'pieceSize': sp.get_piece_size(), 'bos': sp.bos_id(), 'eos': sp.eos_id(), 'unk': sp.unk_id()}
    with open(os.path.join(DIR, 'reference-ids.json'), 'w', encoding='utf-8') as f:
        json.dump({'meta': meta, 'cases': rows}, f, ensure_ascii=False, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()

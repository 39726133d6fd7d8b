import torch
from helpers import TINY_BERT

from rsretrieval.models.text_encoders.bert import BertTextEncoder

CAPTIONS = ['a plane is parked next to two buildings', 'many green trees', '', 'dense ' * 40, 'Left AND right .']


def _encoder(**kwargs) -> BertTextEncoder:
    torch.manual_seed(0)
    return BertTextEncoder(config=TINY_BERT, max_length=30, **kwargs)


def test_tokenize_matches_the_tokenizer_and_caches():
    enc = _encoder()
    for pad in (False, True):
        ours = enc.tokenize(CAPTIONS * 3, pad_to_max_length=pad)
        ref = enc.tokenizer(
            CAPTIONS * 3,
            padding='max_length' if pad else 'longest',
            truncation=True,
            max_length=30,
            return_tensors='pt',
        )
        assert torch.equal(ours['input_ids'], ref['input_ids'])
        assert torch.equal(ours['attention_mask'], ref['attention_mask'])
    assert set(enc._token_cache) == set(CAPTIONS)
    assert enc.tokenize([])['input_ids'].shape == (0, 0)


def test_token_cache_is_bounded_or_off():
    enc = _encoder(token_cache_size=3)
    enc.tokenize(CAPTIONS[:3])
    enc.tokenize(CAPTIONS[3:])  # 3 + 2 > 3: emptied, then the new ones kept
    assert set(enc._token_cache) == set(CAPTIONS[3:])
    mixed = [CAPTIONS[3], CAPTIONS[0], CAPTIONS[1]]  # one cached, two new: the cache is emptied meanwhile
    ref = enc.tokenizer(mixed, padding='longest', truncation=True, max_length=30, return_tensors='pt')
    assert torch.equal(enc.tokenize(mixed)['input_ids'], ref['input_ids'])
    off = _encoder(token_cache_size=0)
    first = off.tokenize(CAPTIONS)['input_ids']
    assert not off._token_cache and torch.equal(first, off.tokenize(CAPTIONS)['input_ids'])


def test_forward_equals_transformers_own_mask_handling():
    enc = _encoder().eval()
    batch = enc.tokenize(CAPTIONS)
    ours = enc(batch['input_ids'], batch['attention_mask'])
    ref = enc.bert(input_ids=batch['input_ids'], attention_mask=batch['attention_mask']).last_hidden_state
    real = batch['attention_mask'].bool()
    torch.testing.assert_close(ours[real], ref[real])

# Table III, "Gswin + ITM + O-Tri": the full CMPAGL tested without a reranker (Table II's
# "w/o SMR"; the same model as "PA-MI" in Table V/VI and "Gswin" in Table VII).
_base_ = ['../../cmpagl_rsicd.py']
test_cfg = dict(reranker=None)

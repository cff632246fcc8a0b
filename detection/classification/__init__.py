"""SPP-net as an image classifier (the paper's sec. 3): datasets, the network, training, evaluation.

``dataset`` holds images of any size (the embedded set or an ImageFolder tree); ``network`` puts
pyramid pooling (or the no-SPP baseline's fixed pool5) and fc6 / fc7 / fc8 on a conv trunk;
``train`` runs single- or multi-size training with a resumable checkpoint; ``evaluate`` measures
top-1 / top-5 error on center-crop and full-image views.
"""

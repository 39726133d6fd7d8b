from rsretrieval.datasets import DemoSceneDataset, RSCaptionDataset
from rsretrieval.utils.constructor_arguments import takes_argument


class _Closed:
    def __init__(self, a: int) -> None:
        self.a = a


class _Open(_Closed):
    def __init__(self, b: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.b = b


def test_named_argument_of_the_class_itself():
    assert takes_argument(_Closed, 'a') and takes_argument(_Open, 'b')


def test_kwargs_lead_to_the_base_that_names_it():
    assert takes_argument(_Open, 'a')
    assert not takes_argument(_Open, 'c')  # the base names no c and takes no **kwargs


def test_dataset_arguments_through_mmengine_base():
    # DemoSceneDataset passes check_images on to RSCaptionDataset, serialize_data to mmengine's BaseDataset
    for cls in (RSCaptionDataset, DemoSceneDataset):
        assert takes_argument(cls, 'check_images') and takes_argument(cls, 'serialize_data')
    assert not takes_argument(RSCaptionDataset, 'no_such_argument')

from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    with open('rsretrieval/version.py', encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(path: str) -> list[str]:
    with open(path, encoding='utf-8') as f:
        return [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]


setup(
    name='rsretrieval',
    version=read_version(),
    description='Remote-sensing cross-modal text-image retrieval (CMPAGL) on mmengine',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['rsretrieval', 'rsretrieval.*']),
    python_requires='>=3.10',
    install_requires=read_requirements('requirements/runtime.txt'),
    package_data={
        'rsretrieval.search': ['static/*'],  # the search page of `rsretrieval-retrieve serve`
        'rsretrieval.weights': ['model_zoo.yml'],  # the model zoo of `rsretrieval-weights`
    },
    extras_require={
        'tests': read_requirements('requirements/tests.txt'),
        'serve': read_requirements('requirements/serve.txt'),
        'tensorboard': read_requirements('requirements/tensorboard.txt'),
        'clip': read_requirements('requirements/clip.txt'),
    },
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'rsretrieval-retrieve=rsretrieval.search.cli:main',
            'rsretrieval-weights=rsretrieval.weights.cli:main',
        ]
    },
)

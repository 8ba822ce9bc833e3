"""Looking inside a network: kernels, filters, feature maps, receptive fields and maximally
activating patches, saliency / guided backpropagation / Grad-CAM, occlusion, class models and
DeepDream, nearest neighbours, confusion matrices and training curves.

Every function returns NumPy/backend arrays; the ``plot_*`` (and ``save_image``) forms write a
PNG with matplotlib, which is imported only inside them.
"""

from .class_model import class_model, deep_dream
from .filters import feature_maps, filter_images, plot_feature_maps, plot_filters
from .kernels import KERNELS, apply_kernel, apply_kernels, plot_kernels
from .neighbors import nearest_neighbors, plot_neighbors
from .occlusion import occlusion_map, occlusion_pixel_map
from .plots import (
    make_grid,
    misclassified,
    plot_confusion_matrix,
    plot_heatmaps,
    plot_history,
    plot_images,
    plot_misclassified,
    save_image,
)
from .receptive_field import (
    ActivatingPatches,
    ReceptiveField,
    max_activating_patches,
    plot_max_activating_patches,
    receptive_field,
)
from .saliency import activation_gradient, class_score_gradient, grad_cam, guided_backprop, guided_relus, saliency_map

"""Stride-1 VALID 3x3 convolution by Winograd's F(2x2, 3x3).

Each 2x2 output tile comes from the 4x4 input tile under it: the input
tiles and the kernel are transformed (B^T d B and G g G^T, 4x4 each), the
16 positions of the transformed tiles are multiplied over channels as one
batched matmul, and the output transform (A^T m A) sums them back to the
2x2 tile. That is 16 multiply-adds per tile and channel pair where the
direct convolution does 36: 2.25x fewer, paid for by two passes over
transformed copies four times the tile grid's size, which XLA compiles
into one loop each. On an AMD Zen 3 (AVX2, 2 cores), where oneDNN's direct
convolutions run at 75-88% of the matmul peak, forward and input gradient
ran 1.3-1.7x as fast as oneDNN's at the discriminators' 32x32 to 128x128
layers, 1.1x at 16x16, and slower at 8x8; on an AMD Zen 4 (AVX-512 on
256-bit units), where they run at about the peak, 1.2-1.5x, 1.2-1.3x and
slower (`benchmarks/conv_gradient_speed.py`). The kernel gradient
multiplies the same input tiles by the output gradient's tiles under the
adjoint of the output transform, 16 products per tile where the k*k
matmuls of `conv2d.filter_gradient` do 36: on an AMD Zen 5, 1.1-1.3x as
fast as those at 16x16 outputs of 512 channels and 1.2-1.7x at larger
layers.

The values are the direct convolution's up to float rounding, a few 1e-6
of the output's scale in float32 (the input transform adds up to 4 terms
before the products, the output transform 9 after)."""

import tensorflow as tf


def _transform_input_rows(rows):
    """B^T applied along one axis to the four rows (or columns) of each
    tile: [d0 - d2, d1 + d2, d2 - d1, d1 - d3]."""
    d0, d1, d2, d3 = rows
    return [d0 - d2, d1 + d2, d2 - d1, d1 - d3]


def _transformed_tiles(images, transform_rows, size):
    """[16, B * th * tw, C]: `transform_rows` (`size` rows or columns in,
    four out) applied along the height, then the width, of every `size` x
    `size` tile, at steps of 2, of `images` [B, H, W, C]; position (i, j)
    of the 4x4 result at index 4 i + j."""
    tiles_high = (images.shape[1] - size) // 2 + 1
    tiles_wide = (images.shape[2] - size) // 2 + 1
    rows = transform_rows(
        [images[:, k:k + 2 * tiles_high:2] for k in range(size)])
    tiles = []
    for row in rows:
        tiles += transform_rows(
            [row[:, :, k:k + 2 * tiles_wide:2] for k in range(size)])
    return tf.reshape(tf.stack(tiles), (16, -1, images.shape[3]))


@tf.function(jit_compile=True)
def _input_tiles(inputs):
    """[16, B * th * tw, C]: B^T d B of every 4x4 tile d (at steps of 2) of
    `inputs` [B, 2 th + 2, 2 tw + 2, C]."""
    return _transformed_tiles(inputs, _transform_input_rows, 4)


def _transform_kernel_rows(rows):
    """G applied along one axis to the three rows (or columns) of the
    kernel, G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]:
    [g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2]."""
    g0, g1, g2 = rows
    return [g0, (g0 + g1 + g2) * 0.5, (g0 - g1 + g2) * 0.5, g2]


@tf.function(jit_compile=True)
def _kernel_tiles(kernel):
    """[16, C_in, C_out]: G g G^T of the 3x3 `kernel` [3, 3, C_in, C_out],
    in the order of `_input_tiles`. As one XLA loop of adds it took 2-3x
    less than an einsum with G (5-6 against 13-16 ms at 512 channels,
    AMD Zen 5)."""
    tiles = []
    for row in _transform_kernel_rows([kernel[i] for i in range(3)]):
        tiles += _transform_kernel_rows([row[j] for j in range(3)])
    return tf.stack(tiles)


def _transform_kernel_gradient_rows(rows):
    """G^T applied along one axis to the four rows (or columns) of the
    transformed kernel's gradient, the adjoint of `_transform_kernel_rows`:
    [m0 + (m1 + m2) / 2, (m1 - m2) / 2, (m1 + m2) / 2 + m3]."""
    m0, m1, m2, m3 = rows
    return [m0 + (m1 + m2) * 0.5, (m1 - m2) * 0.5, (m1 + m2) * 0.5 + m3]


@tf.function(jit_compile=True)
def _kernel_gradient_from_tiles(products):
    """[3, 3, C_in, C_out]: G^T m G of the gradient of the transformed
    kernel, `products` [16, C_in, C_out] in the order of `_kernel_tiles`
    (2-7x less time than an einsum, as there)."""
    rows = _transform_kernel_gradient_rows(
        [products[4 * a:4 * a + 4] for a in range(4)])
    return tf.stack([tf.stack(_transform_kernel_gradient_rows(
        [row[b] for b in range(4)])) for row in rows])


def _transform_output_rows(rows):
    """A^T applied along one axis to the four rows (or columns) of each
    tile's products, A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]: [m0 + m1 + m2,
    m1 - m2 - m3]."""
    m0, m1, m2, m3 = rows
    return [m0 + m1 + m2, m1 - m2 - m3]


@tf.function(jit_compile=True)
def _output_tiles(products):
    """[B, 2 th, 2 tw, C]: A^T m A of each tile's 4x4 `products` [4, 4, B,
    th, tw, C]."""
    rows = _transform_output_rows([products[k] for k in range(4)])
    tiles = [tf.stack(_transform_output_rows([row[k] for k in range(4)]),
                      axis=3) for row in rows]
    shape = tf.shape(products)
    return tf.reshape(tf.stack(tiles, axis=2), (
        shape[2], 2 * products.shape[3], 2 * products.shape[4],
        products.shape[5]))


def _transform_output_gradient_rows(rows):
    """A applied along one axis to the two rows (or columns) of each
    tile's output gradient, the adjoint of `_transform_output_rows`:
    [y0, y0 + y1, y0 - y1, -y1]."""
    y0, y1 = rows
    return [y0, y0 + y1, y0 - y1, -y1]


@tf.function(jit_compile=True)
def _output_gradient_tiles(output_gradient):
    """[16, B * th * tw, C]: A y A^T of every 2x2 tile y of
    `output_gradient` [B, 2 th, 2 tw, C], the gradient of `_output_tiles`'
    products, in the order of `_input_tiles`."""
    return _transformed_tiles(output_gradient,
                              _transform_output_gradient_rows, 2)


def _pad_bottom_right(images, rows, columns):
    """`images` [B, H, W, C] with `rows` and `columns` of zeros added at
    the bottom and right."""
    if rows or columns:
        return tf.pad(images, [[0, 0], [0, rows], [0, columns], [0, 0]])
    return images


def _even_output(inputs):
    """`inputs` [B, H, W, C] zero-padded at the bottom and right so that a
    VALID 3x3 convolution's output has even height and width, and that
    output's height and width before the padding."""
    height, width = inputs.shape[1] - 2, inputs.shape[2] - 2
    return _pad_bottom_right(inputs, height % 2, width % 2), height, width


def conv2d_3x3(inputs, kernel):
    """`tf.nn.conv2d(inputs, kernel, 1, "VALID")` for a 3x3 `kernel` [3,
    3, C_in, C_out] and `inputs` [B, H, W, C_in] of static H and W. An odd
    output size is computed one row or column larger, on a zero-padded
    input, and cut."""
    inputs, height, width = _even_output(inputs)
    products = tf.matmul(_input_tiles(inputs), _kernel_tiles(kernel))
    outputs = _output_tiles(tf.reshape(products, (
        4, 4, -1, (height + 1) // 2, (width + 1) // 2, kernel.shape[3])))
    if height % 2 or width % 2:
        outputs = outputs[:, :height, :width]
    return outputs


def input_gradient_3x3(kernel, output_gradient):
    """The input gradient of `conv2d_3x3` (stride 1, VALID) given its
    `output_gradient`: the output gradient, padded by 2, convolved with the
    kernel flipped and its channel axes swapped (what oneDNN's
    Conv2DBackpropInput computes), here by Winograd too."""
    return conv2d_3x3(
        tf.pad(output_gradient, [[0, 0], [2, 2], [2, 2], [0, 0]]),
        tf.transpose(tf.reverse(kernel, [0, 1]), (0, 1, 3, 2)))


def filter_gradient_3x3(inputs, output_gradient):
    """The kernel gradient [3, 3, C_in, C_out] of a stride-1 VALID 3x3
    convolution of `inputs` [B, H, W, C_in] (static H and W) given its
    `output_gradient` [B, H - 2, W - 2, C_out], by Winograd too: the
    transformed input tiles times the output gradient's tiles transformed
    by the adjoint of the output transform (A y A^T), summed over tiles
    by 16 matmuls of C_in x C_out, then G^T . G back to 3x3
    (`_kernel_gradient_from_tiles`). 16
    multiply-adds per tile and channel pair where the k*k matmuls of
    `conv2d.filter_gradient` do 36. An odd output size is padded with a
    zero gradient, as `conv2d_3x3` pads its input."""
    inputs, height, width = _even_output(inputs)
    output_gradient = _pad_bottom_right(output_gradient, height % 2,
                                        width % 2)
    return _kernel_gradient_from_tiles(tf.matmul(
        _input_tiles(inputs), _output_gradient_tiles(output_gradient),
        transpose_a=True))

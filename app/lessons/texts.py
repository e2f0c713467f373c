"""Titles, summaries and line notes of the lessons, in English and Chinese.

Notes are keyed by an anchor: an exact substring that occurs on exactly one
line of the lesson's source. The registry resolves anchors to line numbers.
Every line on which the explorer can stop has a note (tests/engine/test_notes.py);
what a note says about nodes, saved tensors and versions was checked on torch 2.13.
Chinese notes use the tutorial's terms: 原地运算 (in-place operation), 计算图
(computational graph), 叶子张量 (leaf tensor), 版本计数器 (version counter),
链式法则 (chain rule), 静态方法 (static method).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["TEXTS", "LessonText"]


class LessonText(NamedTuple):
    title: str
    title_zh: str
    summary: str
    summary_zh: str
    notes: dict[str, tuple[str, str]]  # anchor -> (en, zh)


# Notes shared by several lessons.

_LOOP = (
    "The training loop: one pass of the body per iteration, t = 0, 1, …, iterations − 1. "
    "The header runs once more at the end, when range(iterations) is exhausted, so the "
    "explorer stops on it iterations + 1 times.",
    "训练循环：每次迭代执行一遍循环体，t = 0, 1, …, iterations − 1。range(iterations) "
    "耗尽时循环头还会再执行一次，所以会在这一行停下 iterations + 1 次。",
)
_IMPORT_TORCH_AUTOGRAD = (
    "torch brings tensors and autograd. Nothing is recorded yet: autograd only starts a "
    "graph when an operation uses a tensor that requires grad.",
    "torch 提供张量和 autograd。此时还没有记录任何东西：只有当运算用到需要梯度的张量时，"
    "autograd 才开始建立计算图。",
)
_IMPORT_TORCH_NN = (
    "torch brings tensors, autograd and torch.nn, the layers and losses this lesson "
    "builds its model from.",
    "torch 提供张量、autograd 以及 torch.nn，本课用其中的层和损失函数搭建模型。",
)
_SEED_SAME_DATA = (
    "torch.manual_seed(seed) seeds torch's random generators (the CPU's and every GPU's). "
    "x, y, w1 and w2 are drawn in the same order as in the tensors lesson, so for the same "
    "config the losses agree with it.",
    "torch.manual_seed(seed) 为 torch 的随机数生成器（CPU 的以及每块 GPU 的）设定种子。"
    "x、y、w1、w2 的生成顺序与张量一课相同，所以相同配置下损失也与它一致。",
)
_SEED_MODEL = (
    "torch.manual_seed(seed) seeds torch's random generators (the CPU's and every GPU's): "
    "x and y are drawn first, then the layers draw their initial weights and biases, so "
    "the same seed gives the same model.",
    "torch.manual_seed(seed) 为 torch 的随机数生成器（CPU 的以及每块 GPU 的）设定种子："
    "先生成 x 和 y，再由各层生成初始权重和偏置，所以相同的种子得到相同的模型。",
)
_X_NO_GRAD = (
    "x, N × D_in, does not require grad: it is a leaf tensor that autograd never computes "
    "a gradient for, so it gets no AccumulateGrad node and no .grad.",
    "x（N × D_in）不需要梯度：它是一个叶子张量，autograd 从不为它计算梯度，所以它没有 "
    "AccumulateGrad 节点，也没有 .grad。",
)
_X_MODULE = (
    "x, N × D_in: the input batch, float32 on device. It does not require grad, so the "
    "first layer's AddmmBackward0 will save x but never send a gradient to it.",
    "x（N × D_in）：输入批数据，float32，位于 device 上。它不需要梯度，所以第一层的 "
    "AddmmBackward0 会保存 x，但从不向它传梯度。",
)
_Y_TARGETS = (
    "y, N × D_out: the targets. They are random, so there is no pattern to find: the "
    "network learns to fit these N samples. y needs no gradient either.",
    "y（N × D_out）：目标值。它们是随机的，没有规律可寻：网络学习的是拟合这 N 个样本。"
    "y 同样不需要梯度。",
)
_REQUIRES_GRAD = (
    "requires_grad=True makes w1 a leaf tensor that autograd tracks: every operation that "
    "uses it is recorded as a node of a graph, and after backward w1.grad holds "
    "d loss / d w1.",
    "requires_grad=True 让 w1 成为 autograd 跟踪的叶子张量：用到它的每个运算都会被记录为"
    "计算图中的一个节点，反向传播之后 w1.grad 中保存的就是 d loss / d w1。",
)
_REQUIRES_GRAD_W2 = (
    "w2, H × D_out, is a tracked leaf tensor too. Its .grad is None until the first "
    "backward reaches its AccumulateGrad node.",
    "w2（H × D_out）同样是被跟踪的叶子张量。在第一次反向传播到达它的 AccumulateGrad 节点"
    "之前，它的 .grad 是 None。",
)
_LOSS_TORCH = (
    "The loss is a scalar tensor at the root of the graph: SubBackward0 (which saves no "
    "tensor), PowBackward0 (which saves y_pred − y for the derivative 2 (y_pred − y)) and "
    "SumBackward0, loss's grad_fn.",
    "损失是计算图根部的标量张量：SubBackward0（不保存张量）、PowBackward0（为求导数 "
    "2 (y_pred − y) 保存 y_pred − y）和 SumBackward0，即 loss 的 grad_fn。",
)
_ITEM = (
    ".item() copies the 0-dimensional loss tensor into a Python float for the loss chart "
    "(on a GPU it waits for the result). A float is outside any graph: nothing is recorded.",
    ".item() 把 0 维的损失张量复制为 Python 浮点数，用于绘制损失曲线（在 GPU 上会等待结果"
    "算完）。浮点数不属于任何计算图：这里不记录任何东西。",
)
_CHAIN_Y_PRED = (
    "Chain rule, step 1: loss = Σ (y_pred − y)², so d loss / d y_pred = 2 (y_pred − y).",
    "链式法则第一步：loss = Σ (y_pred − y)²，所以 d loss / d y_pred = 2 (y_pred − y)。",
)
_CHAIN_W2 = (
    "Because y_pred = h_relu · w2, the gradient for w2 is h_reluᵀ · grad_y_pred, "
    "an H × D_out matrix, the same shape as w2.",
    "因为 y_pred = h_relu · w2，w2 的梯度是 h_reluᵀ · grad_y_pred，形状为 H × D_out，与 w2 相同。",
)
_CHAIN_H_RELU = (
    "The same product gives the gradient for its other factor: "
    "d loss / d h_relu = grad_y_pred · w2ᵀ.",
    "同一个矩阵乘积对另一个因子求导：d loss / d h_relu = grad_y_pred · w2ᵀ。",
)
_CHAIN_RELU = (
    "ReLU's derivative is 1 where h ≥ 0 and 0 where h < 0, so the gradient only "
    "flows back through the hidden units that were active.",
    "ReLU 的导数在 h ≥ 0 处为 1，在 h < 0 处为 0，所以梯度只流经被激活的隐藏单元。",
)
_CHAIN_W1 = (
    "Last link of the chain: h = x · w1, so d loss / d w1 = xᵀ · grad_h.",
    "链条的最后一环：h = x · w1，所以 d loss / d w1 = xᵀ · grad_h。",
)
_DESCENT = (
    "Gradient descent: move each weight a small step against its gradient, "
    "w ← w − learning_rate · d loss / d w.",
    "梯度下降：让每个权重沿梯度的反方向走一小步，w ← w − learning_rate · d loss / d w。",
)
_BACKWARD = (
    "backward() walks the graph from the loss back to the leaves, applying the chain "
    "rule node by node (SumBackward0, PowBackward0, SubBackward0, MmBackward0, …), and the "
    "AccumulateGrad nodes add each leaf's gradient into its .grad. The tensors the graph "
    "saved for backward are freed afterwards.",
    "backward() 从 loss 出发沿计算图反向走到叶子张量，逐个节点应用链式法则（SumBackward0、"
    "PowBackward0、SubBackward0、MmBackward0……），再由 AccumulateGrad 节点把每个叶子张量的"
    "梯度累加到它的 .grad 中。之后，计算图为反向传播保存的张量会被释放。",
)
_NO_GRAD = (
    "The update must not become part of the graph: under torch.no_grad() operations "
    "are not recorded, and changing a leaf that requires grad in place is allowed.",
    "参数更新不应成为计算图的一部分：在 torch.no_grad() 中运算不会被记录，"
    "并且允许原地修改需要梯度的叶子张量。",
)
_IN_PLACE_UPDATE = (
    "-= changes w1 in place: w1 stays the same leaf tensor and its version counter goes up "
    "by one. w1 = w1 - ... would instead make, under no_grad, a new leaf that does not "
    "require grad, and autograd would stop tracking w1.",
    "-= 原地修改 w1：w1 仍是同一个叶子张量，其版本计数器加一。而 w1 = w1 - ... 在 no_grad "
    "下会产生一个新的、不需要梯度的叶子张量，autograd 便不再跟踪 w1。",
)
_IN_PLACE_UPDATE_W2 = (
    "The same step for w2, in place: w2 stays the leaf tensor the graph uses, and "
    "w2._version goes up by one at every update.",
    "对 w2 做同样的原地更新：w2 仍是计算图所用的那个叶子张量，每次更新 w2._version 加一。",
)
_IF_ZERO_GRAD = (
    "zero_grad is a config switch, true by default. Set it to false and the gradients of "
    "all iterations add up in .grad, so each update uses their running sum.",
    "zero_grad 是一个配置开关，默认为 true。把它设为 false，各次迭代的梯度就会在 .grad 中"
    "累加，每次更新用的是它们的累计和。",
)
_ZERO = (
    "backward() adds into .grad instead of overwriting it, so that gradients of several "
    "losses can add up. Without zeroing, each iteration would step along the sum of all "
    "gradients so far: try zero_grad=false.",
    "backward() 是把梯度累加到 .grad 上，而不是覆盖它，这样多个损失的梯度可以相加。"
    "如果不清零，每次迭代都会沿着迄今所有梯度之和更新：试试 zero_grad=false。",
)
_ZERO_W2 = (
    "zero_() fills w2.grad with zeros in place: the tensor stays allocated (its own version "
    "goes up, not w2's), and the next backward's AccumulateGrad adds into it.",
    "zero_() 原地把 w2.grad 填为零：这个张量仍然保留（增加的是它自己的版本号，而不是 w2 的），"
    "下一次反向传播的 AccumulateGrad 会累加到它上面。",
)
_MODEL_CALL = (
    "Calling the model runs its forward. A module has no backward of its own: "
    "autograd records the operations forward runs (AddmmBackward0, ReluBackward0, …) "
    "and differentiates those.",
    "调用模型就是运行它的 forward。模块本身没有 backward：autograd 记录 forward "
    "执行的运算（AddmmBackward0、ReluBackward0……）并对它们求导。",
)
_MSE = (
    'MSELoss(reduction="sum") is the same sum of squared errors as before; '
    'the default "mean" would divide it by the number of elements.',
    'MSELoss(reduction="sum") 和前面一样是误差平方和；默认的 "mean" 会再除以元素个数。',
)
_MSE_CALL = (
    "The loss is one node, MseLossBackward0. It saves y_pred and the target y, since its "
    "gradient is 2 (y_pred − y); y itself gets no gradient.",
    "损失只是一个节点：MseLossBackward0。它保存 y_pred 和目标 y，因为它的梯度是 "
    "2 (y_pred − y)；y 本身不会得到梯度。",
)
_SEQUENTIAL = (
    "nn.Sequential runs its modules in order. Each Linear owns a weight and a bias, "
    "Parameters with requires_grad=True, randomly initialised when the layer is built.",
    "nn.Sequential 依次运行其中的模块。每个 Linear 拥有一个权重和一个偏置，它们都是"
    " requires_grad=True 的 Parameter，在创建层时随机初始化。",
)
_LINEAR_1 = (
    "Layer 0: weight H × D_in and bias H, leaf tensors drawn uniformly from ±1/√D_in. In "
    "forward it computes x · weightᵀ + bias as one addmm, recorded as AddmmBackward0, with "
    "a TBackward0 for weightᵀ.",
    "第 0 层：权重 H × D_in、偏置 H，都是叶子张量，从 ±1/√D_in 范围内均匀抽取。forward 中它"
    "用一次 addmm 计算 x · weightᵀ + bias，记录为 AddmmBackward0，另有一个 TBackward0 对应 "
    "weightᵀ。",
)
_RELU_MODULE = (
    "Layer 1: ReLU has no parameters. In forward it creates ReluBackward0, which saves its "
    "output: the gradient passes where the output is > 0.",
    "第 1 层：ReLU 没有参数。forward 中它创建 ReluBackward0，保存自己的输出：梯度只在输出 "
    "> 0 处通过。",
)
_LINEAR_2 = (
    "Layer 2: weight D_out × H and bias D_out, drawn from ±1/√H. Its AddmmBackward0 saves "
    "both its input (the ReLU's output) and weightᵀ, since both need gradients.",
    "第 2 层：权重 D_out × H、偏置 D_out，从 ±1/√H 范围内抽取。它的 AddmmBackward0 同时保存"
    "输入（ReLU 的输出）和 weightᵀ，因为两者都需要梯度。",
)
_TO_DEVICE = (
    ".to(device) moves every parameter of the model to device, in place on the module "
    "object, and returns the same module. On the CPU nothing moves.",
    ".to(device) 把模型的所有参数移动到 device 上，直接修改这个模块对象本身，并返回同一个模块。"
    "在 CPU 上则什么也不移动。",
)
_OPTIM_ZERO_GRAD = (
    "Clears .grad of every parameter the optimizer holds (to None by default), "
    "so this iteration's backward does not add onto the last one's.",
    "清除优化器持有的每个参数的 .grad（默认设为 None），这样本轮的反向传播不会"
    "叠加到上一轮的梯度上。",
)
_TORCH_X = (
    "torch.manual_seed(seed) fixed the random stream; creating the tensors "
    "directly on device lets the same code run on the CPU or a GPU.",
    "torch.manual_seed(seed) 固定了随机数序列；直接在 device 上创建张量，"
    "同一份代码就能在 CPU 或 GPU 上运行。",
)

# The lessons that let autograd differentiate hand-made weights share these lines.
_AUTOGRAD_SETUP: dict[str, tuple[str, str]] = {
    "torch.manual_seed(seed)": _SEED_SAME_DATA,
    "x = torch.randn(N, D_in, device=device)": _X_NO_GRAD,
    "y = torch.randn(N, D_out, device=device)": _Y_TARGETS,
    "w1 = torch.randn(D_in, H, device=device, requires_grad=True)": _REQUIRES_GRAD,
    "w2 = torch.randn(H, D_out, device=device, requires_grad=True)": _REQUIRES_GRAD_W2,
}
# The nn and optim lessons share their model, data and loop lines, and so these notes.
_SEQUENTIAL_SETUP: dict[str, tuple[str, str]] = {
    "import torch": _IMPORT_TORCH_NN,
    "torch.manual_seed(seed)": _SEED_MODEL,
    "x = torch.randn(N, D_in, device=device)": _X_MODULE,
    "y = torch.randn(N, D_out, device=device)": _Y_TARGETS,
    "model = torch.nn.Sequential(": _SEQUENTIAL,
    "torch.nn.Linear(D_in, H),": _LINEAR_1,
    "torch.nn.ReLU(),": _RELU_MODULE,
    "torch.nn.Linear(H, D_out),": _LINEAR_2,
    ").to(device)": _TO_DEVICE,
    'loss_fn = torch.nn.MSELoss(reduction="sum")': _MSE,
}
_SEQUENTIAL_LOOP: dict[str, tuple[str, str]] = {
    "for t in range(iterations):": _LOOP,
    "y_pred = model(x)": _MODEL_CALL,
    "loss = loss_fn(y_pred, y)": _MSE_CALL,
    "losses.append(loss.item())": _ITEM,
    "if zero_grad:": _IF_ZERO_GRAD,
}

TEXTS: dict[str, LessonText] = {
    "numpy": LessonText(
        title="NumPy: forward and backward by hand",
        title_zh="NumPy：手写前向与反向传播",
        summary=(
            "A two-layer ReLU network fitted to random data with nothing but NumPy arrays. "
            "The forward pass and every gradient of the backward pass are written out with "
            "the chain rule, and gradient descent updates the weights. At the end, autograd "
            "computes the same gradients on the same float64 arrays, and the largest "
            "difference is shown."
        ),
        summary_zh=(
            "只用 NumPy 数组，用一个两层 ReLU 网络拟合随机数据。前向传播和反向传播中的每个梯度都按"
            "链式法则手工写出，再用梯度下降更新权重。最后，autograd 在同样的 float64 数组上计算"
            "相同的梯度，并给出两者的最大差值。"
        ),
        notes={
            "import numpy as np": (
                "NumPy arrays hold all the data. NumPy knows nothing about gradients, so every "
                "derivative below is written by hand.",
                "所有数据都放在 NumPy 数组中。NumPy 对梯度一无所知，所以下面的每个导数都是手写的。",
            ),
            "import torch": (
                "torch is used only by the check at the end, where autograd recomputes the "
                "gradients at the final weights.",
                "torch 只在最后的检查中使用：autograd 在最终的权重处重新计算梯度。",
            ),
            "rng = np.random.default_rng(seed)": (
                "One seeded generator draws x, y, w1 and w2 in this order, so the same "
                "config always gives the same numbers.",
                "用同一个带种子的生成器依次生成 x、y、w1、w2，因此相同的配置总得到相同的数值。",
            ),
            "x = rng.standard_normal((N, D_in))": (
                "x: N samples of D_in features from a standard normal distribution, a float64 "
                "array (NumPy's default).",
                "x：N 个样本、每个 D_in 个特征，取自标准正态分布，是 float64 数组（NumPy "
                "的默认类型）。",
            ),
            "y = rng.standard_normal((N, D_out))": (
                "y: the N × D_out targets. They are random, so there is no pattern to find: "
                "the network learns to fit these N samples.",
                "y：N × D_out 的目标值。它们是随机的，没有规律可寻：网络学习的是拟合这 N 个样本。",
            ),
            "w1 = rng.standard_normal((D_in, H))": (
                "w1: the first layer's weights, D_in × H, so that x · w1 is N × H.",
                "w1：第一层的权重，D_in × H，因此 x · w1 是 N × H。",
            ),
            "w2 = rng.standard_normal((H, D_out))": (
                "w2: the second layer's weights, H × D_out, so that h_relu · w2 is N × D_out, "
                "the shape of y.",
                "w2：第二层的权重，H × D_out，因此 h_relu · w2 是 N × D_out，与 y 的形状相同。",
            ),
            "for t in range(iterations):": _LOOP,
            "h = x.dot(w1)": (
                "Layer 1: h = x · w1, the N × H hidden pre-activations.",
                "第一层：h = x · w1，得到 N × H 的隐藏层激活前的值。",
            ),
            "h_relu = np.maximum(h, 0)": (
                "ReLU keeps the positive entries and zeroes the rest. h is kept too: "
                "the backward pass needs to know where it was negative.",
                "ReLU 保留正值，其余置零。h 也要保留：反向传播需要知道它在哪些位置为负。",
            ),
            "y_pred = h_relu.dot(w2)": (
                "Layer 2: y_pred = h_relu · w2, the N × D_out predictions.",
                "第二层：y_pred = h_relu · w2，得到 N × D_out 的预测值。",
            ),
            "loss = np.square(y_pred - y).sum()": (
                "The loss is the sum of squared errors, Σ (y_pred − y)².",
                "损失是误差平方和 Σ (y_pred − y)²。",
            ),
            "losses.append(float(loss))": (
                "float() turns the NumPy scalar into a Python float for the loss chart: one "
                "entry per iteration.",
                "float() 把 NumPy 标量变成 Python 浮点数，用于绘制损失曲线：每次迭代一个值。",
            ),
            "grad_y_pred = 2.0 * (y_pred - y)": _CHAIN_Y_PRED,
            "grad_w2 = h_relu.T.dot(grad_y_pred)": _CHAIN_W2,
            "grad_h_relu = grad_y_pred.dot(w2.T)": _CHAIN_H_RELU,
            "grad_h = grad_h_relu.copy()": (
                "copy() makes a new array, so zeroing entries of grad_h on the next line "
                "leaves grad_h_relu unchanged.",
                "copy() 生成一个新数组，所以下一行把 grad_h 的部分元素置零时，grad_h_relu "
                "不受影响。",
            ),
            "grad_h[h < 0] = 0": _CHAIN_RELU,
            "grad_w1 = x.T.dot(grad_h)": _CHAIN_W1,
            "w1 -= learning_rate * grad_w1": _DESCENT,
            "w2 -= learning_rate * grad_w2": (
                "The same step for w2. Both gradients were computed from the weights before "
                "either step, and -= updates the arrays in place.",
                "对 w2 做同样的一步。两个梯度都是用更新前的权重算出的，-= 原地更新数组。",
            ),
            "h_final = x.dot(w1)": (
                "The check starts: the forward pass once more, at the final weights (the "
                "loop's last gradients were for the weights before its last step).",
                "检查开始：在最终的权重处再做一次前向传播（循环最后一次算出的梯度对应的是最后"
                "一步更新之前的权重）。",
            ),
            "grad_out = 2.0 * (np.maximum(h_final, 0).dot(w2) - y)": (
                "d loss / d y_pred at the final weights, 2 (y_pred − y): the first link of "
                "the chain, forward pass included, in one line.",
                "最终权重处的 d loss / d y_pred = 2 (y_pred − y)：链条的第一环，"
                "连同前向传播写在一行里。",
            ),
            "hand_grad_w2 = np.maximum(h_final, 0).T.dot(grad_out)": (
                "grad_w2 by hand at the final weights: h_reluᵀ · grad_out.",
                "在最终权重处手工计算 grad_w2：h_reluᵀ · grad_out。",
            ),
            "hand_grad_w1 = x.T.dot(": (
                "grad_w1 by hand at the final weights: (h_final >= 0) is the ReLU mask of "
                "grad_h[h < 0] = 0, the same rule autograd's ClampBackward1 applies "
                "(the gradient passes where h ≥ 0).",
                "在最终权重处手工计算 grad_w1：(h_final >= 0) 就是 grad_h[h < 0] = 0 所表示的 "
                "ReLU 掩码，与 autograd 的 ClampBackward1 的规则相同（h ≥ 0 处梯度通过）。",
            ),
            "x_t = torch.tensor(x, device=device)": (
                "torch.tensor copies the array into a tensor, keeping float64. x_t does not "
                "require grad: autograd computes no gradient for it.",
                "torch.tensor 把数组复制成张量，保持 float64。x_t 不需要梯度：autograd "
                "不会为它计算梯度。",
            ),
            "y_t = torch.tensor(y, device=device)": (
                "The targets as a float64 tensor; no gradient needed either.",
                "目标值变成 float64 张量；同样不需要梯度。",
            ),
            "w1_t = torch.tensor(w1, device=device, requires_grad=True)": (
                "The final w1 as a leaf tensor that requires grad: autograd records its uses, "
                "and backward leaves d loss / d w1 in w1_t.grad.",
                "最终的 w1 变成需要梯度的叶子张量：autograd 记录用到它的运算，反向传播后把 "
                "d loss / d w1 存入 w1_t.grad。",
            ),
            "w2_t = torch.tensor(w2, device=device, requires_grad=True)": (
                "The same for w2: a tracked leaf tensor, whose gradient lands in w2_t.grad.",
                "w2 同理：一个被跟踪的叶子张量，它的梯度会存入 w2_t.grad。",
            ),
            "loss_t = (x_t.mm(w1_t).clamp(min=0).mm(w2_t) - y_t).pow(2).sum()": (
                "The same forward pass and loss, now recorded as a graph: MmBackward0 (saves "
                "x_t only, as x_t needs no gradient), ClampBackward1 (saves its input, to know "
                "where it was ≥ 0), MmBackward0 (saves both factors), SubBackward0, "
                "PowBackward0 (saves the difference) and SumBackward0.",
                "同样的前向传播和损失，这次记录成计算图：MmBackward0（只保存 x_t，因为 x_t "
                "不需要梯度）、ClampBackward1（保存输入，以便知道哪里 ≥ 0）、MmBackward0（保存"
                "两个因子）、SubBackward0、PowBackward0（保存差值）和 SumBackward0。",
            ),
            "loss_t.backward()": (
                "Autograd differentiates the same function of the same float64 arrays: the "
                "engine runs the nodes from SumBackward0 back to the two AccumulateGrad nodes, "
                "which write w1_t.grad and w2_t.grad.",
                "autograd 对同一组 float64 数组上的同一个函数求导：引擎从 SumBackward0 一路运行到"
                "两个 AccumulateGrad 节点，由它们写入 w1_t.grad 和 w2_t.grad。",
            ),
            "max_abs_diff = max(": (
                "The largest absolute difference between the hand-written gradients and "
                "autograd's. It is below 10⁻¹² of the largest gradient, float64 rounding, which "
                "shows the hand-written chain rule computes the same gradients: a wrong "
                "transpose, sign or ReLU mask would differ by about the gradients' own size.",
                "手写梯度与 autograd 梯度之间的最大绝对差。它小于最大梯度的 10⁻¹²，只是 float64 "
                "的舍入误差，这说明手写的链式法则算出的梯度与 autograd 相同：转置、符号或 ReLU "
                "掩码若有错，差值会与梯度本身一样大。",
            ),
            "float(np.abs(hand_grad_w1 - w1_t.grad.cpu().numpy()).max()),": (
                "w1_t.grad.cpu().numpy() brings autograd's gradient back as a NumPy array (from "
                "a GPU it is copied first), to compare element by element with hand_grad_w1.",
                "w1_t.grad.cpu().numpy() 把 autograd 的梯度取回为 NumPy 数组（若在 GPU 上会先复制）"
                "，再与 hand_grad_w1 逐元素比较。",
            ),
            "float(np.abs(hand_grad_w2 - w2_t.grad.cpu().numpy()).max()),": (
                "The same comparison for w2: the largest absolute difference between "
                "hand_grad_w2 and w2_t.grad.",
                "对 w2 做同样的比较：hand_grad_w2 与 w2_t.grad 之间的最大绝对差。",
            ),
        },
    ),
    "tensors": LessonText(
        title="Tensors: the same network on torch tensors",
        title_zh="张量：用 torch 张量实现同一个网络",
        summary=(
            "The NumPy program rewritten with torch tensors, which can live on a GPU: "
            "set device to run it there. The backward pass is still written by hand; "
            "no tensor requires grad, so autograd records nothing."
        ),
        summary_zh=(
            "把 NumPy 程序改写为 torch 张量，张量可以放在 GPU 上：设置 device 即可在那里运行。"
            "反向传播仍是手写的；没有张量需要梯度，所以 autograd 什么也不记录。"
        ),
        notes={
            "import torch": (
                "torch's tensors replace NumPy's arrays and can live on a GPU; the gradients "
                "are still computed by hand.",
                "torch 的张量取代 NumPy 数组，并且可以放在 GPU 上；梯度仍然手工计算。",
            ),
            "torch.manual_seed(seed)": (
                "Seeds torch's random generators (the CPU's and every GPU's), so x, y, w1 and "
                "w2 repeat for the same seed. The numbers differ from the NumPy lesson's: it "
                "is another generator.",
                "为 torch 的随机数生成器（CPU 的以及每块 GPU 的）设定种子，"
                "所以相同的种子得到相同的 x、y、w1、w2。数值与 NumPy 一课不同：那是另一个生成器。",
            ),
            "x = torch.randn(N, D_in, device=device)": _TORCH_X,
            "y = torch.randn(N, D_out, device=device)": (
                "y: the N × D_out targets, float32 (torch's default dtype), on the same device as "
                "x.",
                "y：N × D_out 的目标值，float32（torch 的默认类型），与 x 位于同一 device 上。",
            ),
            "w1 = torch.randn(D_in, H, device=device)": (
                "w1 is a plain tensor: requires_grad is False, so operations on it record "
                "nothing and it never gets a .grad; its gradient is computed by hand below.",
                "w1 是普通张量：requires_grad 为 False，所以对它的运算不记录任何东西，它也不会有 "
                ".grad；它的梯度在下面手工计算。",
            ),
            "w2 = torch.randn(H, D_out, device=device)": (
                "w2, H × D_out: like w1, not tracked by autograd.",
                "w2（H × D_out）：和 w1 一样，不被 autograd 跟踪。",
            ),
            "for t in range(iterations):": _LOOP,
            "h = x.mm(w1)": (
                "Layer 1: h = x · w1 (mm is matrix multiplication), N × H. h has no grad_fn: "
                "none of its inputs requires grad.",
                "第一层：h = x · w1（mm 即矩阵乘法），N × H。h 没有 grad_fn："
                "它的输入都不需要梯度。",
            ),
            "h_relu = h.clamp(min=0)": (
                "clamp(min=0) is ReLU on tensors: negative entries become 0.",
                "clamp(min=0) 就是张量上的 ReLU：负值变为 0。",
            ),
            "y_pred = h_relu.mm(w2)": (
                "Layer 2: y_pred = h_relu · w2, the N × D_out predictions.",
                "第二层：y_pred = h_relu · w2，得到 N × D_out 的预测值。",
            ),
            "loss = (y_pred - y).pow(2).sum()": (
                "The sum of squared errors, a 0-dimensional tensor, still on device.",
                "误差平方和，一个 0 维张量，仍位于 device 上。",
            ),
            "losses.append(loss.item())": _ITEM,
            "grad_y_pred = 2.0 * (y_pred - y)": _CHAIN_Y_PRED,
            "grad_w2 = h_relu.t().mm(grad_y_pred)": _CHAIN_W2,
            "grad_h_relu = grad_y_pred.mm(w2.t())": _CHAIN_H_RELU,
            "grad_h = grad_h_relu.clone()": (
                "clone() copies, so zeroing entries of grad_h on the next line leaves "
                "grad_h_relu unchanged.",
                "clone() 会复制数据，所以下一行把 grad_h 的部分元素置零时，grad_h_relu 不受影响。",
            ),
            "grad_h[h < 0] = 0": _CHAIN_RELU,
            "grad_w1 = x.t().mm(grad_h)": _CHAIN_W1,
            "w1 -= learning_rate * grad_w1": _DESCENT,
            "w2 -= learning_rate * grad_w2": (
                "The same step for w2. -= changes the tensor in place, and its version counter "
                "(w2._version) goes up by one.",
                "对 w2 做同样的一步。-= 原地修改张量，其版本计数器（w2._version）加一。",
            ),
        },
    ),
    "autograd": LessonText(
        title="Autograd: gradients computed for you",
        title_zh="Autograd：自动计算梯度",
        summary=(
            "The weights are created with requires_grad=True, so every operation on them "
            "is recorded in a graph as the forward pass runs. loss.backward() walks that "
            "graph backwards and leaves d loss / d w in w1.grad and w2.grad. The update runs "
            "under torch.no_grad(), and the gradients are zeroed after each step."
        ),
        summary_zh=(
            "权重以 requires_grad=True 创建，因此前向传播时对它们的每个运算都被记录到计算图中。"
            "loss.backward() 沿计算图反向遍历，把 d loss / d w 存入 w1.grad 和 w2.grad。"
            "参数更新在 torch.no_grad() 中进行，每步之后把梯度清零。"
        ),
        notes={
            "import torch": _IMPORT_TORCH_AUTOGRAD,
            **_AUTOGRAD_SETUP,
            "for t in range(iterations):": _LOOP,
            "y_pred = x.mm(w1).clamp(min=0).mm(w2)": (
                "Each operation on a tensor that requires grad returns a tensor with a grad_fn, "
                "the node that will compute its gradient: x.mm(w1) creates MmBackward0, which "
                "saves x only (w1's gradient needs x; x needs none, so w1 is not kept), "
                "clamp(min=0) creates ClampBackward1, which saves its input, and .mm(w2) another "
                "MmBackward0, which saves both factors. The graph is built as the code runs.",
                "对需要梯度的张量做运算，得到的张量带有 grad_fn，即将来计算其梯度的节点：x.mm(w1) "
                "创建 MmBackward0，它只保存 x（w1 的梯度需要 x；x 不需要梯度，所以不保留 w1）；"
                "clamp(min=0) 创建 ClampBackward1，保存它的输入；.mm(w2) 再创建一个保存两个因子的 "
                "MmBackward0。计算图是在代码运行时建立的。",
            ),
            "loss = (y_pred - y).pow(2).sum()": _LOSS_TORCH,
            "losses.append(loss.item())": _ITEM,
            "    loss.backward()": _BACKWARD,
            "with torch.no_grad():": _NO_GRAD,
            "w1 -= learning_rate * w1.grad": _IN_PLACE_UPDATE,
            "w2 -= learning_rate * w2.grad": _IN_PLACE_UPDATE_W2,
            "if zero_grad:": _IF_ZERO_GRAD,
            "w1.grad.zero_()": _ZERO,
            "w2.grad.zero_()": _ZERO_W2,
        },
    ),
    "custom_function": LessonText(
        title="Custom autograd Function: your own ReLU",
        title_zh="自定义 autograd Function：自己实现 ReLU",
        summary=(
            "ReLU written as a torch.autograd.Function with a forward and a backward of its "
            "own. forward saves its input with ctx.save_for_backward; backward reads it back "
            "from ctx.saved_tensors to compute the input's gradient. MyReLU.apply puts the "
            "new node into the graph. The numbers equal the autograd lesson's."
        ),
        summary_zh=(
            "把 ReLU 写成一个 torch.autograd.Function，带有自己的 forward 和 backward。forward "
            "用 ctx.save_for_backward 保存输入；backward 从 ctx.saved_tensors 取回它来计算输入的"
            "梯度。MyReLU.apply 把这个新节点加入计算图。结果与 autograd 一课完全相同。"
        ),
        notes={
            "import torch": _IMPORT_TORCH_AUTOGRAD,
            "class MyReLU(torch.autograd.Function):": (
                "A Function subclass defines a new kind of graph node: a static forward that "
                "computes the output and a static backward that turns the output's gradient "
                "into the input's.",
                "Function 的子类定义了一种新的计算图节点：forward 静态方法计算输出，backward "
                "静态方法把输出的梯度转换为输入的梯度。",
            ),
            "def forward(ctx, input):": (
                "forward is a static method (the @staticmethod above): no self; ctx carries "
                "what this one call needs. apply calls it with autograd recording off, so its "
                "operations create no nodes of their own.",
                "forward 是静态方法（上面的 @staticmethod）：没有 self；ctx 携带这一次调用所需的"
                "信息。apply 调用它时 autograd 的记录是关闭的，所以其中的运算不会各自创建节点。",
            ),
            "ctx.save_for_backward(input)": (
                "ctx is the context object of this one call, shared by forward and backward. "
                "save_for_backward keeps input, x.mm(w1), for backward and records its version, "
                "so a later in-place change is detected.",
                "ctx 是这一次调用的上下文对象，forward 和 backward 共用。save_for_backward 为反向"
                "传播保存 input（即 x.mm(w1)）并记录其版本号，以便发现之后的原地修改。",
            ),
            "return input.clamp(min=0)": (
                "The output, a new tensor. clamp records no node here (recording is off); "
                "apply makes MyReLUBackward the output's grad_fn instead.",
                "输出是一个新张量。clamp 在这里不记录节点（记录已关闭）；而是由 apply 把 "
                "MyReLUBackward 设为输出的 grad_fn。",
            ),
            "def backward(ctx, grad_output):": (
                "backward, also a static method (the @staticmethod above): grad_output is d loss / "
                "d output, and it must "
                "return d loss / d input, one gradient per input of forward.",
                "backward 同样是静态方法（上面的 @staticmethod）：grad_output 是 d loss / d "
                "output，它必须返回 d loss / d input，forward 的每个输入对应一个梯度。",
            ),
            "(input,) = ctx.saved_tensors": (
                "saved_tensors returns what forward saved, after checking that nothing "
                "modified it in place since.",
                "saved_tensors 返回 forward 保存的张量，并先检查它们之后没有被原地修改过。",
            ),
            "grad_input = grad_output.clone()": (
                "clone() copies grad_output, so the in-place zeroing on the next line does not "
                "change the tensor the engine passed in. backward runs with recording off: "
                "these operations create no nodes.",
                "clone() 复制 grad_output，这样下一行的原地置零不会改动引擎传进来的张量。backward "
                "运行时记录是关闭的：这些运算不会创建节点。",
            ),
            "grad_input[input < 0] = 0": (
                "ReLU's backward: the gradient passes where the input was ≥ 0 and is zero "
                "elsewhere, the same rule as grad_h[h < 0] = 0 in the tensors lesson.",
                "ReLU 的反向传播：输入 ≥ 0 处梯度原样通过，其余处为零，"
                "与张量一课中的 grad_h[h < 0] = 0 相同。",
            ),
            "return grad_input": (
                "The gradient for forward's one input. The engine passes it on to the "
                "MmBackward0 node of x.mm(w1).",
                "这是 forward 唯一输入的梯度。引擎把它继续传给 x.mm(w1) 的 MmBackward0 节点。",
            ),
            **_AUTOGRAD_SETUP,
            "for t in range(iterations):": _LOOP,
            "relu = MyReLU.apply": (
                "Never call forward directly: apply runs forward and, when an input requires "
                "grad, adds a MyReLUBackward node to the graph, linked to its inputs' nodes.",
                "不要直接调用 forward：apply 会运行 forward，并在输入需要梯度时把一个 "
                "MyReLUBackward 节点加入计算图，连接到输入的节点。",
            ),
            "y_pred = relu(x.mm(w1)).mm(w2)": (
                "The autograd lesson's function, with MyReLUBackward between two MmBackward0 "
                "nodes: the first saves x, the second saves relu's output and w2. Same "
                "function, same data: the same losses.",
                "与 autograd 一课是同一个函数，只是 MyReLUBackward 位于两个 MmBackward0 之间："
                "第一个保存 x，第二个保存 relu 的输出和 w2。函数相同、数据相同，损失也相同。",
            ),
            "loss = (y_pred - y).pow(2).sum()": _LOSS_TORCH,
            "losses.append(loss.item())": _ITEM,
            "loss.backward()": (
                "When the engine reaches the MyReLUBackward node it calls MyReLU.backward "
                "with the gradient of that node's output. On the CPU that runs in this "
                "thread, so the explorer steps through backward's lines too.",
                "反向引擎到达 MyReLUBackward 节点时，会用该节点输出的梯度调用 MyReLU.backward。"
                "在 CPU 上它在当前线程中运行，所以浏览器也会逐行走过 backward 的代码。",
            ),
            "with torch.no_grad():": _NO_GRAD,
            "w1 -= learning_rate * w1.grad": _IN_PLACE_UPDATE,
            "w2 -= learning_rate * w2.grad": _IN_PLACE_UPDATE_W2,
            "if zero_grad:": _IF_ZERO_GRAD,
            "w1.grad.zero_()": _ZERO,
            "w2.grad.zero_()": _ZERO_W2,
        },
    ),
    "static_graph": LessonText(
        title="Static graph: define once, run many times",
        title_zh="静态图：定义一次，多次运行",
        summary=(
            "Define-then-run, as in TensorFlow 1. torch.func.grad_and_value turns the loss "
            "function into one that also returns gradients, and make_fx traces the whole "
            "training step (forward, gradients and update) once into a torch.fx graph. "
            "The loop then only feeds tensors through that fixed graph, which never changes."
        ),
        summary_zh=(
            "先定义后运行，就像 TensorFlow 1。torch.func.grad_and_value 把损失函数变成同时返回"
            "梯度的函数，make_fx 把整个训练步骤（前向、梯度和更新）追踪一次，得到一个 torch.fx "
            "计算图。之后循环只是让张量流过这个固定不变的图。"
        ),
        notes={
            "import torch": (
                "torch brings tensors and torch.func, whose grad_and_value turns a function "
                "into one that also returns its gradients.",
                "torch 提供张量和 torch.func，其中的 grad_and_value "
                "把一个函数变成同时返回梯度的函数。",
            ),
            "from torch.fx.experimental.proxy_tensor import make_fx": (
                "make_fx records the aten ops a function runs into a torch.fx graph. Python if "
                "and for run only while the graph is traced, and only the branch taken then "
                "is recorded: Control flow that must vary from run to run has to be a graph "
                "op (TF1's tf.cond and tf.while_loop, torch.cond, torch.where).",
                "make_fx 把函数执行的 aten 运算记录成一个 torch.fx 计算图。Python 的 if 和 for "
                "只在追踪时执行，图中只记录当时走过的分支：每次运行都可能不同的控制流必须写成图运算"
                "（TF1 的 tf.cond 与 tf.while_loop、torch.cond、torch.where）。",
            ),
            "torch.manual_seed(seed)": _SEED_SAME_DATA,
            "x = torch.randn(N, D_in, device=device)": (
                "x and y are what TF1 fed through placeholders: ordinary tensors, passed to "
                "the graph on every run.",
                "x 和 y 相当于 TF1 中通过占位符送入的数据：普通张量，每次运行时传给计算图。",
            ),
            "y = torch.randn(N, D_out, device=device)": (
                "y, N × D_out: the targets, fed to the graph together with x.",
                "y（N × D_out）：目标值，与 x 一起送入计算图。",
            ),
            "w1 = torch.randn(D_in, H, device=device)": (
                "w1 is a plain tensor, requires_grad False: its gradient will be an output of "
                "the graph's own ops, never a .grad.",
                "w1 是普通张量，requires_grad 为 False：它的梯度将是计算图中运算的输出，而不是 "
                ".grad。",
            ),
            "w2 = torch.randn(H, D_out, device=device)": (
                "w2, H × D_out: a plain tensor too. The loop replaces w1 and w2 with the new "
                "tensors the graph returns.",
                "w2（H × D_out）：同样是普通张量。循环会用计算图返回的新张量替换 w1 和 w2。",
            ),
            "def loss_fn(w1, w2, x, y):": (
                "The model as a pure function of its inputs: no state, no .grad.",
                "把模型写成只依赖输入的纯函数：没有状态，也没有 .grad。",
            ),
            "y_pred = x.mm(w1).clamp(min=0).mm(w2)": (
                "Runs only once, while make_fx traces. grad_and_value has made w1 and w2 "
                "require grad, so autograd records MmBackward0, ClampBackward1 and MmBackward0, "
                "and make_fx records aten::mm, aten::clamp and aten::mm.",
                "这一行只在 make_fx 追踪时运行一次。grad_and_value 已让 w1 和 w2 需要梯度，所以 "
                "autograd 记录 MmBackward0、ClampBackward1 和 MmBackward0，make_fx 则记录 "
                "aten::mm、aten::clamp 和 aten::mm。",
            ),
            "return (y_pred - y).pow(2).sum()": (
                "The loss, also traced once: SubBackward0, PowBackward0 and SumBackward0 in "
                "the autograd graph; aten::sub, aten::pow and aten::sum in the static one.",
                "损失同样只追踪一次：autograd 计算图中是 SubBackward0、PowBackward0 和 "
                "SumBackward0；静态图中是 aten::sub、aten::pow 和 aten::sum。",
            ),
            "def train_step(w1, w2, x, y):": (
                "A whole training step as one function: loss, gradients and update. It returns "
                "new weights instead of changing w1 and w2 in place.",
                "把整个训练步骤写成一个函数：损失、梯度和更新。它返回新的权重，而不是原地修改 w1 "
                "和 w2。",
            ),
            "torch.func.grad_and_value(loss_fn, argnums=(0, 1))": (
                "grad_and_value transforms loss_fn into a function that returns the gradients "
                "with respect to arguments 0 and 1 (w1, w2) and the loss, like tf.gradients: "
                "gradients are values in the program, not stored in .grad. While tracing it "
                "runs the backward nodes once, but no AccumulateGrad: nothing goes into .grad.",
                "grad_and_value 把 loss_fn 变换为一个函数，返回对第 0、1 个参数（w1、w2）的梯度"
                "以及损失，类似 tf.gradients：梯度是程序中的值，而不是存到 .grad 中。追踪时它把反向"
                "节点运行一次，但不运行 AccumulateGrad：没有任何东西写入 .grad。",
            ),
            "return w1 - learning_rate * grad_w1, w2 - learning_rate * grad_w2, loss": (
                "The update as new tensors, traced as aten::mul by learning_rate (a constant "
                "in the graph) and aten::sub.",
                "更新得到新的张量，被追踪为乘以 learning_rate 的 aten::mul（在图中是常量）和 "
                "aten::sub。",
            ),
            "static_graph = make_fx(train_step)(w1, w2, x, y)": (
                "Define: make_fx runs train_step once and records every aten op it performs, "
                "forward, backward and update, into a GraphModule. Built once, the graph can "
                "be optimised as a whole (fused, reordered, memory planned); learning_rate "
                "and the shapes are baked in as constants.",
                "定义：make_fx 运行一次 train_step，把其中的每个 aten 运算（前向、反向和更新）"
                "记录到一个 GraphModule 中。图只建一次，因此可以整体优化（融合、重排、规划内存）；"
                "learning_rate 和各个形状都作为常量固定在图里。",
            ),
            "for t in range(iterations):": _LOOP,
            "w1, w2, loss = static_graph(w1, w2, x, y)": (
                "Run: each iteration feeds the current tensors through the same graph, like "
                "sess.run with a feed_dict. No autograd graph is recorded: the gradient ops "
                "are already part of the static graph.",
                "运行：每次迭代把当前张量送入同一个图，就像带 feed_dict 的 sess.run。"
                "这里不记录 autograd 计算图：求梯度的运算已经是静态图的一部分。",
            ),
            "losses.append(loss.item())": (
                "The loss the graph returned, of the weights it started from, as a Python "
                "float for the loss chart (.item() waits for a GPU to finish).",
                "计算图返回的损失（对应本次开始时的权重），转为 Python 浮点数用于绘制损失曲线"
                "（在 GPU 上 .item() 会等待计算完成）。",
            ),
        },
    ),
    "nn": LessonText(
        title="nn: layers, modules and a loss function",
        title_zh="nn：层、模块与损失函数",
        summary=(
            "The network built from torch.nn: nn.Sequential(Linear, ReLU, Linear) holds "
            "the weights and biases as Parameters, and MSELoss(reduction='sum') is the loss. "
            "Autograd differentiates what the modules ran; model.zero_grad() clears the old "
            "gradients, and the update over model.parameters() is still written by hand."
        ),
        summary_zh=(
            "用 torch.nn 搭建网络：nn.Sequential(Linear, ReLU, Linear) 以 Parameter 形式持有"
            "权重和偏置，损失是 MSELoss(reduction='sum')。autograd 对模块执行过的运算求导；"
            "model.zero_grad() 清除旧梯度，对 model.parameters() 的更新仍是手写的。"
        ),
        notes={
            **_SEQUENTIAL_SETUP,
            **_SEQUENTIAL_LOOP,
            "model.zero_grad()": (
                "Clears the gradients of the previous iteration: .grad of every parameter "
                "becomes None (PyTorch 2's default), and the next backward writes a fresh one.",
                "清除上一轮的梯度：每个参数的 .grad 变为 None（PyTorch 2 的默认行为），"
                "下一次反向传播会重新写入。",
            ),
            "loss.backward()": (
                "Backward fills .grad of every parameter: model.0.weight, model.0.bias, "
                "model.2.weight and model.2.bias. Each has one AccumulateGrad node, reached "
                "through AddmmBackward0 (the biases) or TBackward0 (the weights).",
                "反向传播填写每个参数的 .grad：model.0.weight、model.0.bias、model.2.weight "
                "和 model.2.bias。每个参数有一个 AccumulateGrad 节点，偏置经由 AddmmBackward0、"
                "权重经由 TBackward0 到达它。",
            ),
            "with torch.no_grad():": _NO_GRAD,
            "for param in model.parameters():": (
                "parameters() yields the four Parameters in registration order: 0.weight, "
                "0.bias, 2.weight, 2.bias (the ReLU at index 1 has none).",
                "parameters() 按注册顺序给出四个 Parameter：0.weight、0.bias、2.weight、2.bias"
                "（索引 1 处的 ReLU 没有参数）。",
            ),
            "param -= learning_rate * param.grad": (
                "Gradient descent on each parameter, in place: the Parameter object stays the "
                "same leaf tensor and its version goes up by one, w ← w − learning_rate · "
                "d loss / d w.",
                "对每个参数做梯度下降，原地进行：Parameter 对象仍是同一个叶子张量，版本号加一，"
                "w ← w − learning_rate · d loss / d w。",
            ),
        },
    ),
    "optim": LessonText(
        title="optim: the Adam optimizer",
        title_zh="optim：Adam 优化器",
        summary=(
            "The nn model trained by torch.optim.Adam. optimizer.zero_grad() clears the "
            "gradients and optimizer.step() updates every parameter from its gradient and "
            "the per-parameter state Adam keeps: a step count and running averages of the "
            "gradient and of its square."
        ),
        summary_zh=(
            "用 torch.optim.Adam 训练 nn 一课的模型。optimizer.zero_grad() 清除梯度，"
            "optimizer.step() 根据梯度以及 Adam 为每个参数保存的状态（步数、梯度及其平方的"
            "滑动平均）更新所有参数。"
        ),
        notes={
            **_SEQUENTIAL_SETUP,
            "optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)": (
                "Adam keeps state for each parameter, created at the first step(): step (a "
                "count), exp_avg (running mean of the gradient) and exp_avg_sq (running mean "
                "of its square), two extra tensors the size of the parameter.",
                "Adam 为每个参数保存状态，在第一次 step() 时创建：step（步数）、exp_avg（梯度的"
                "滑动平均）和 exp_avg_sq（梯度平方的滑动平均），即两个与参数同样大小的额外张量。",
            ),
            **_SEQUENTIAL_LOOP,
            "optimizer.zero_grad()": _OPTIM_ZERO_GRAD,
            "loss.backward()": (
                "Backward runs MseLossBackward0, the two AddmmBackward0 with their TBackward0, "
                "and ReluBackward0; the four AccumulateGrad nodes store each parameter's "
                "gradient in its .grad (set to None by optimizer.zero_grad(); with "
                "zero_grad=false they add up).",
                "反向传播运行 MseLossBackward0、两个 AddmmBackward0 及其 TBackward0，以及 "
                "ReluBackward0；四个 AccumulateGrad 节点把各参数的梯度存入 .grad（它已被 "
                "optimizer.zero_grad() 设为 None；若 zero_grad=false 则累加）。",
            ),
            "    optimizer.step()": (
                "Adam's update: m ← 0.9·m + 0.1·g, v ← 0.999·v + 0.001·g², then "
                "param ← param − lr · m̂ / (√v̂ + ε) with bias-corrected m̂ and v̂. Each step "
                "moves a weight by about lr, whatever the scale of its gradient.",
                "Adam 的更新：m ← 0.9·m + 0.1·g，v ← 0.999·v + 0.001·g²，然后 "
                "param ← param − lr · m̂ / (√v̂ + ε)，其中 m̂、v̂ 经过偏差修正。无论梯度大小，"
                "每一步权重大约移动 lr。",
            ),
        },
    ),
    "custom_module": LessonText(
        title="Custom nn.Module: a model class of your own",
        title_zh="自定义 nn.Module：自己的模型类",
        summary=(
            "The network as a subclass of torch.nn.Module: layers created in __init__, "
            "connected in forward. There is no backward to write; autograd differentiates "
            "the operations forward runs. torch.optim.SGD applies the update."
        ),
        summary_zh=(
            "把网络写成 torch.nn.Module 的子类：在 __init__ 中创建层，在 forward 中把它们连接"
            "起来。不需要写 backward；autograd 会对 forward 执行的运算求导。"
            "由 torch.optim.SGD 完成参数更新。"
        ),
        notes={
            "import torch": _IMPORT_TORCH_NN,
            "class TwoLayerNet(torch.nn.Module):": (
                "Layers assigned as attributes in __init__ are registered as submodules, so "
                "model.parameters() finds their weights and biases.",
                "在 __init__ 中赋值为属性的层会被注册为子模块，因此 model.parameters() "
                "能找到它们的权重和偏置。",
            ),
            "def __init__(self, D_in, H, D_out):": (
                "__init__ runs once, when the model is built: it creates the layers and so "
                "draws their initial weights.",
                "__init__ 在创建模型时运行一次：它创建各层，也就随之生成它们的初始权重。",
            ),
            "super().__init__()": (
                "Call it first: it sets up the module's registries of parameters and submodules.",
                "必须先调用它：它为模块建立参数和子模块的注册表。",
            ),
            "self.linear1 = torch.nn.Linear(D_in, H)": (
                "Assigning a Module to an attribute registers it as the submodule linear1: its "
                "weight (H × D_in) and bias (H), drawn from ±1/√D_in, become "
                "model.linear1.weight and model.linear1.bias.",
                "把一个 Module 赋给属性，就把它注册为子模块 linear1：它的权重（H × D_in）"
                "和偏置（H）从 ±1/√D_in 范围内抽取，成为 model.linear1.weight 和 "
                "model.linear1.bias。",
            ),
            "self.linear2 = torch.nn.Linear(H, D_out)": (
                "The submodule linear2: weight D_out × H and bias D_out, drawn from ±1/√H.",
                "子模块 linear2：权重 D_out × H、偏置 D_out，从 ±1/√H 范围内抽取。",
            ),
            "def forward(self, x):": (
                "Defines forward, which model(x) runs through Module.__call__: the graph is "
                "recorded as its operations run, one node at a time.",
                "定义 forward，model(x) 经由 Module.__call__ 运行它：计算图随着其中的运算执行，"
                "一个节点一个节点地记录下来。",
            ),
            "h_relu = self.linear1(x).clamp(min=0)": (
                "forward says how the data flows, with any tensor operations. There is no "
                "backward method: autograd differentiates the operations forward ran, here "
                "AddmmBackward0 (with TBackward0 for linear1's weightᵀ) and ClampBackward1, "
                "which saves its input.",
                "forward 描述数据如何流动，可以使用任意张量运算。这里没有 backward 方法："
                "autograd 会对 forward 执行过的运算求导，这里是 AddmmBackward0（以及对应 linear1 "
                "权重转置的 TBackward0）和保存其输入的 ClampBackward1。",
            ),
            "y_pred = self.linear2(h_relu)": (
                "linear2's addmm: another AddmmBackward0, which saves h_relu and linear2's "
                "weightᵀ, since both need gradients.",
                "linear2 的 addmm：又一个 AddmmBackward0，它保存 h_relu 和 linear2 的 weightᵀ，"
                "因为两者都需要梯度。",
            ),
            "return y_pred": (
                "y_pred, N × D_out, with grad_fn AddmmBackward0, the end of this forward's graph.",
                "y_pred（N × D_out），grad_fn 为 AddmmBackward0，是本次前向计算图的末端。",
            ),
            "torch.manual_seed(seed)": _SEED_MODEL,
            "x = torch.randn(N, D_in, device=device)": _X_MODULE,
            "y = torch.randn(N, D_out, device=device)": _Y_TARGETS,
            "model = TwoLayerNet(D_in, H, D_out).to(device)": (
                "Builds the model: __init__ creates linear1 then linear2, drawing their "
                "weights right after x and y; .to(device) moves them to device and returns "
                "the same model.",
                "创建模型：__init__ 先后创建 linear1 和 linear2，紧接在 x、y 之后生成它们的权重；"
                ".to(device) 把它们移到 device 上，并返回同一个模型。",
            ),
            'loss_fn = torch.nn.MSELoss(reduction="sum")': _MSE,
            "optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)": (
                "Plain SGD: step() does param -= lr * param.grad for every parameter, the "
                "update the nn lesson wrote by hand.",
                "普通的 SGD：step() 对每个参数执行 param -= lr * param.grad，"
                "也就是 nn 一课中手写的更新。",
            ),
            "for t in range(iterations):": _LOOP,
            "y_pred = model(x)": (
                "model(x) goes through Module.__call__, which runs any hooks and then "
                "TwoLayerNet.forward.",
                "model(x) 经由 Module.__call__，先运行可能存在的钩子，再调用 TwoLayerNet.forward。",
            ),
            "loss = loss_fn(y_pred, y)": _MSE_CALL,
            "losses.append(loss.item())": _ITEM,
            "if zero_grad:": _IF_ZERO_GRAD,
            "optimizer.zero_grad()": (
                "Clears the gradients of the previous iteration (.grad becomes None); without "
                "it they would add up.",
                "清除上一轮的梯度（.grad 变为 None）；否则梯度会不断累加。",
            ),
            "loss.backward()": (
                "Backward runs MseLossBackward0, AddmmBackward0, ClampBackward1, AddmmBackward0 "
                "and the TBackward0 nodes; the AccumulateGrad nodes store the gradients of "
                "linear1's and linear2's weights and biases in their .grad.",
                "反向传播运行 MseLossBackward0、AddmmBackward0、ClampBackward1、AddmmBackward0 "
                "以及各 TBackward0 节点；AccumulateGrad 节点把 linear1、linear2 的权重和偏置的梯度"
                "存入各自的 .grad。",
            ),
            "optimizer.step()": (
                "One SGD step: param -= lr · param.grad for each of the four parameters, in "
                "place and without recording, so each parameter's version goes up by one.",
                "一步 SGD：对四个参数各执行 param -= lr · param.grad，原地进行且不记录，"
                "所以每个参数的版本号加一。",
            ),
        },
    ),
    "dynamic_net": LessonText(
        title="Dynamic net: control flow and weight sharing",
        title_zh="动态网络：控制流与权重共享",
        summary=(
            "Each forward pass reuses one middle Linear layer a random 0 to 3 times, decided "
            "by an ordinary Python loop. Autograd records a new graph on every call, so the "
            "graph's depth changes from one iteration to the next, and the gradients of all "
            "uses of the shared layer add up. SGD with momentum trains it."
        ),
        summary_zh=(
            "每次前向传播由普通的 Python 循环决定把同一个中间 Linear 层随机重复使用 0 到 3 次。"
            "autograd 在每次调用时记录一张新图，所以图的深度在迭代之间变化，共享层各次使用的梯度"
            "会累加在一起。使用带动量的 SGD 训练。"
        ),
        notes={
            "import random": (
                "Python's own random module: it draws the depths, separately from torch's "
                "generator, which draws the data and the weights.",
                "Python 自带的 random 模块：它负责抽取深度，与负责生成数据和权重的 torch "
                "生成器分开。",
            ),
            "import torch": _IMPORT_TORCH_NN,
            "class DynamicNet(torch.nn.Module):": (
                "A module whose forward changes shape from call to call: three Linear layers, "
                "of which the middle one may be used several times or not at all.",
                "一个每次调用结构都可能不同的模块：三个 Linear 层，其中中间层可能被使用多次，也可能"
                "一次都不用。",
            ),
            "def __init__(self, D_in, H, D_out, rng):": (
                "__init__ creates the three layers and keeps the generator rng the depths "
                "will be drawn from.",
                "__init__ 创建三个层，并保存之后用来抽取深度的生成器 rng。",
            ),
            "super().__init__()": (
                "Sets up the module's registries of parameters and submodules; it must run "
                "before any layer is assigned.",
                "为模块建立参数和子模块的注册表；必须在给任何层赋值之前调用。",
            ),
            "self.input_linear = torch.nn.Linear(D_in, H)": (
                "The input layer, registered as the submodule input_linear: weight H × D_in and "
                "bias H, drawn first.",
                "输入层，注册为子模块 input_linear：权重 H × D_in、偏置 H，最先生成。",
            ),
            "self.middle_linear = torch.nn.Linear(H, H)": (
                "There is only one middle layer: every reuse in forward shares its weight "
                "and bias.",
                "中间层只有一个：forward 中的每次重复使用都共享它的权重和偏置。",
            ),
            "self.output_linear = torch.nn.Linear(H, D_out)": (
                "The output layer: weight D_out × H and bias D_out.",
                "输出层：权重 D_out × H、偏置 D_out。",
            ),
            "self.rng = rng": (
                "A plain attribute: a random.Random is neither a Module nor a Parameter, so it "
                "is not registered and model.parameters() does not see it.",
                "普通属性：random.Random 既不是 Module 也不是 Parameter，所以不会被注册，"
                "model.parameters() 也看不到它。",
            ),
            "def forward(self, x):": (
                "forward runs on every model(x) call and records a fresh graph each time.",
                "每次调用 model(x) 都会运行 forward，并且每次都记录一张新的计算图。",
            ),
            "h_relu = self.input_linear(x).clamp(min=0)": (
                "The input layer and ReLU: AddmmBackward0 (saving x, with TBackward0 for "
                "input_linear's weightᵀ) and ClampBackward1, which saves its input to know "
                "where it was ≥ 0.",
                "输入层和 ReLU：AddmmBackward0（保存 x，另有对应 input_linear 权重转置的 "
                "TBackward0）和 ClampBackward1，后者保存输入以便知道哪里 ≥ 0。",
            ),
            "depth = self.rng.randint(0, 3)": (
                "Ordinary Python picks this forward pass's depth: randint(0, 3) includes both "
                "ends, so 0, 1, 2 or 3 reuses, from the run's one seeded generator, so a run "
                "can be replayed exactly. Autograd sees none of this, only the ops that follow.",
                "由普通的 Python 代码选出这次前向传播的深度：randint(0, 3) 包含两端，即重复 0、1、"
                "2 或 3 次；它来自本次运行唯一的带种子生成器，因此运行可以被精确重放。autograd "
                "看不到这些，只看到随后执行的运算。",
            ),
            "for _ in range(depth):": (
                "Dynamic graph: autograd records operations as they run, so a plain Python "
                "loop or if is the control flow, and each forward builds a new graph. A "
                "static graph would need the loop as a graph op.",
                "动态图：autograd 在运算执行时记录它们，所以普通的 Python 循环或 if 就是控制流，"
                "每次前向传播都会建立一张新图。静态图则需要把循环写成图运算。",
            ),
            "h_relu = self.middle_linear(h_relu).clamp(min=0)": (
                "Weight sharing: each reuse adds its own AddmmBackward0, TBackward0 and "
                "ClampBackward1, but every TBackward0 leads to the shared weight's one "
                "AccumulateGrad node; in backward the gradients of all uses are summed into "
                "middle_linear.weight.grad.",
                "权重共享：每次重复使用都加入自己的 AddmmBackward0、TBackward0 和 ClampBackward1，"
                "但每个 TBackward0 都通向共享权重唯一的 AccumulateGrad 节点；反向传播时，各次使用的"
                "梯度相加后存入 middle_linear.weight.grad。",
            ),
            "y_pred = self.output_linear(h_relu)": (
                "The output layer: an AddmmBackward0 that saves its input h_relu and "
                "output_linear's weightᵀ.",
                "输出层：一个 AddmmBackward0，保存其输入 h_relu 和 output_linear 的 weightᵀ。",
            ),
            "return y_pred": (
                "y_pred, N × D_out: the end of a graph 1 + depth + 1 Linear layers deep.",
                "y_pred（N × D_out）：一张包含 1 + depth + 1 个 Linear 层的计算图的末端。",
            ),
            "torch.manual_seed(seed)": _SEED_MODEL,
            "x = torch.randn(N, D_in, device=device)": _X_MODULE,
            "y = torch.randn(N, D_out, device=device)": _Y_TARGETS,
            "rng = random.Random(seed)": (
                "One generator for the whole run, created from the seed and drawn once per "
                "forward pass.",
                "整个运行只用这一个由种子创建的生成器，每次前向传播抽取一次。",
            ),
            "model = DynamicNet(D_in, H, D_out, rng).to(device)": (
                "Builds the model: input_linear, middle_linear and output_linear draw their "
                "weights from torch's generator in that order, and the model keeps rng for "
                "the depths.",
                "创建模型：input_linear、middle_linear、output_linear 依次从 torch 的生成器中生成"
                "权重，模型保存 rng 用于抽取深度。",
            ),
            'loss_fn = torch.nn.MSELoss(reduction="sum")': _MSE,
            "SGD(model.parameters(), lr=learning_rate, momentum=momentum)": (
                "Momentum: SGD keeps a momentum_buffer per parameter, v ← momentum·v + grad, "
                "and steps param ← param − lr·v. Steady gradient directions build up speed; "
                "oscillations cancel out.",
                "动量：SGD 为每个参数保存一个 momentum_buffer，v ← momentum·v + grad，"
                "并执行 param ← param − lr·v。方向一致的梯度会累积速度，来回振荡则相互抵消。",
            ),
            "for t in range(iterations):": _LOOP,
            "y_pred = model(x)": (
                "Each call draws a new depth, so this iteration's graph has 0 to 3 middle "
                "AddmmBackward0 and ClampBackward1 pairs.",
                "每次调用都会抽取新的深度，所以本轮的计算图中有 0 到 3 组中间层的 AddmmBackward0 "
                "与 ClampBackward1。",
            ),
            "loss = loss_fn(y_pred, y)": _MSE_CALL,
            "losses.append(loss.item())": _ITEM,
            "if zero_grad:": _IF_ZERO_GRAD,
            "optimizer.zero_grad()": (
                "Sets .grad of every parameter to None. After a forward of depth 0, "
                "middle_linear is not in the graph, so its .grad stays None through backward.",
                "把每个参数的 .grad 设为 None。若这次前向传播的深度为 0，middle_linear "
                "不在计算图中，它的 .grad 在反向传播后仍是 None。",
            ),
            "loss.backward()": (
                "The backward graph of this iteration has as many middle layers as this "
                "forward pass used.",
                "本轮的反向图中，中间层的数目与这次前向传播使用的次数相同。",
            ),
            "optimizer.step()": (
                "One momentum step per parameter with a gradient: buf ← momentum·buf + grad "
                "(the first step copies grad), param ← param − lr·buf, in place. A parameter "
                "whose .grad is None, middle_linear's after a depth-0 forward, is skipped.",
                "对每个有梯度的参数做一步动量更新：buf ← momentum·buf + grad（第一步直接复制 grad）"
                "，param ← param − lr·buf，原地进行。.grad 为 None 的参数（深度为 0 时的 "
                "middle_linear）会被跳过。",
            ),
        },
    ),
    "inplace": LessonText(
        title="In-place operations and version counters",
        title_zh="原地运算与版本计数器",
        summary=(
            "In-place operations (the ones ending in _) change a tensor's memory and bump "
            "its version counter. Part 1 trains with a custom in-place ReLU that declares "
            "the change with ctx.mark_dirty and gets correct gradients. Part 2 modifies a "
            "tensor saved for backward, and autograd refuses to backpropagate: the program "
            "ends with PyTorch's RuntimeError."
        ),
        summary_zh=(
            "原地运算（名字以 _ 结尾）会改写张量的内存，并使其版本计数器加一。第一部分用一个"
            "自定义的原地 ReLU 训练，它用 ctx.mark_dirty 声明这种修改，得到正确的梯度。"
            "第二部分修改了一个为反向传播保存的张量，autograd 拒绝反向传播：程序以 PyTorch 的 "
            "RuntimeError 结束。"
        ),
        notes={
            "import torch": _IMPORT_TORCH_AUTOGRAD,
            "class MyReLU_(torch.autograd.Function):": (
                "A trailing underscore is PyTorch's mark of an in-place operation (clamp_, "
                "mul_, zero_): it overwrites the tensor instead of returning a new one.",
                "结尾的下划线是 PyTorch 对原地运算的标记（clamp_、mul_、zero_）：它直接改写张量，"
                "而不是返回一个新张量。",
            ),
            "def forward(ctx, input):": (
                "forward is a static method (the @staticmethod above): no self, and autograd "
                "recording is off inside it. Here input is h itself, not a copy.",
                "forward 是静态方法（上面的 @staticmethod）：没有 self，其中 autograd "
                "的记录是关闭的。这里的 input 就是 h 本身，而不是副本。",
            ),
            "ctx.mark_dirty(input)": (
                "mark_dirty tells autograd that forward changes input in place. When forward "
                "returns, apply makes the returned tensor the output of this node and bumps "
                "its version once more, after clamp_'s bump. Without it, h would still claim "
                "to be mm's unchanged output.",
                "mark_dirty 告诉 autograd：forward 会原地修改 input。forward 返回时，apply "
                "把返回的张量设为本节点的输出，并在 clamp_ 之后再把它的版本号加一。否则 h "
                "仍会声称自己是 mm 未经修改的输出。",
            ),
            "input.clamp_(min=0)": (
                "clamp_ overwrites input, allocating nothing, and its version counter "
                "(._version) goes from 0 to 1: every tensor counts the in-place changes of "
                "its memory.",
                "clamp_ 原地改写 input，不分配新内存，其版本计数器（._version）从 0 变为 1："
                "每个张量都会统计其内存被原地修改的次数。",
            ),
            "ctx.save_for_backward(input)": (
                "This saves the output, input after clamp_. Autograd packs saved tensors when "
                "forward returns, after apply's extra bump, so it records version 2, the "
                "version h will have, and backward finds it unchanged.",
                "这里保存的是输出，即 clamp_ 之后的 input。autograd 在 forward 返回时才打包保存的"
                "张量，此时 apply 已再加一次版本号，所以记录的是版本号 2，也就是 h 之后的版本号，"
                "反向传播时会发现它没有变化。",
            ),
            "return input": (
                "It returns the very tensor it was given: because of mark_dirty, apply makes "
                "MyReLU_Backward that tensor's grad_fn, so h and h_relu are one tensor.",
                "它返回的正是传进来的那个张量：由于 mark_dirty，apply 把 MyReLU_Backward 设为这个"
                "张量的 grad_fn，所以 h 和 h_relu 是同一个张量。",
            ),
            "def backward(ctx, grad_output):": (
                "backward, also a static method (the @staticmethod above): it gets d loss / d "
                "h_relu and returns d loss / d h, for the MmBackward0 of x.mm(w1).",
                "backward 同样是静态方法（上面的 @staticmethod）：它接收 d loss / d h_relu，返回 d "
                "loss / d h，交给 x.mm(w1) 的 MmBackward0。",
            ),
            "(output,) = ctx.saved_tensors": (
                "Unpacks the saved output, after checking that its version is still 2, the "
                "version recorded when it was saved.",
                "取出保存的输出，先检查其版本号仍是保存时记录的 2。",
            ),
            "return grad_output * (output > 0)": (
                "The input is gone, overwritten; the output tells where it was positive, "
                "which is all ReLU's backward needs.",
                "输入已被覆盖、不复存在；输出表明它在哪些位置为正，这正是 ReLU 反向传播所需要的。",
            ),
            **_AUTOGRAD_SETUP,
            "for t in range(iterations):": _LOOP,
            "h = x.mm(w1)": (
                "h = x · w1, grad_fn MmBackward0, version 0. MmBackward0 saves x only (x needs "
                "no gradient, so w1 is not kept): that is what makes overwriting h safe.",
                "h = x · w1，grad_fn 为 MmBackward0，版本号 0。MmBackward0 只保存 x（x 不需要梯度，"
                "所以不保留 w1）：正因如此，改写 h 才是安全的。",
            ),
            "h_relu = MyReLU_.apply(h)": (
                "h_relu is h itself: its grad_fn is now MyReLU_Backward, and h's version is "
                "now 2: clamp_ added one and mark_dirty one more. Changing h is safe because "
                "MmBackward0 saved only x, neither h nor w1.",
                "h_relu 就是 h 本身：它的 grad_fn 变成了 MyReLU_Backward，h 的版本号现在是 2："
                "clamp_ 加了一次，mark_dirty 又加了一次。修改 h 是安全的，因为 MmBackward0 "
                "只保存了 x，既没有保存 h 也没有保存 w1。",
            ),
            "y_pred = h_relu.mm(w2)": (
                "This MmBackward0 saves both factors: h_relu, at version 2, and w2. Changing "
                "either of them in place before backward would make backward fail.",
                "这个 MmBackward0 保存两个因子：版本号为 2 的 h_relu 以及 w2。"
                "在反向传播之前原地修改其中任何一个，都会让反向传播失败。",
            ),
            "loss = (y_pred - y).pow(2).sum()": _LOSS_TORCH,
            "losses.append(loss.item())": _ITEM,
            "loss.backward()": (
                "The engine runs SumBackward0, PowBackward0, SubBackward0, the MmBackward0 of "
                "h_relu.mm(w2) and w2's AccumulateGrad, then MyReLU_Backward (which calls "
                "MyReLU_.backward), the MmBackward0 of x.mm(w1) and w1's AccumulateGrad. "
                "Every saved tensor still has the version it was saved at, so nothing fails.",
                "引擎依次运行 SumBackward0、PowBackward0、SubBackward0、h_relu.mm(w2) 的 "
                "MmBackward0 和 w2 的 AccumulateGrad，然后是 MyReLU_Backward（它调用 "
                "MyReLU_.backward）、x.mm(w1) 的 MmBackward0 和 w1 的 AccumulateGrad。"
                "每个保存的张量版本号都与保存时相同，所以一切正常。",
            ),
            "with torch.no_grad():": _NO_GRAD,
            "w1 -= learning_rate * w1.grad": (
                "-= is in place too: w1's version goes up by one. It is safe: this "
                "iteration's graph never saved w1 (MmBackward0 kept only x), and backward has "
                "already run it and freed its saved tensors.",
                "-= 也是原地运算：w1 的版本号加一。这是安全的：本轮计算图从未保存 w1（MmBackward0 "
                "只保留了 x），而且反向传播已经运行过它并释放了保存的张量。",
            ),
            "w2 -= learning_rate * w2.grad": (
                "w2 was saved, by the MmBackward0 of h_relu.mm(w2). Changing it now is safe "
                "because backward has already used and freed that saved tensor; before "
                "backward, it would raise the error of part 2.",
                "w2 被 h_relu.mm(w2) 的 MmBackward0 保存过。现在修改它是安全的，"
                "因为反向传播已经用过并释放了这个保存的张量；若在反向传播之前修改，"
                "就会引发第二部分中的错误。",
            ),
            "if zero_grad:": _IF_ZERO_GRAD,
            "w1.grad.zero_()": _ZERO,
            "w2.grad.zero_()": _ZERO_W2,
            "a = x.mm(w1)": (
                "Part 2: a = x · w1 with the trained w1. Its MmBackward0 again saves only x.",
                "第二部分：用训练后的 w1 计算 a = x · w1。它的 MmBackward0 同样只保存 x。",
            ),
            "b = a.sigmoid()": (
                "sigmoid's derivative is b·(1 − b), so SigmoidBackward0 saves its output b, "
                "together with b's version at this moment, 0.",
                "sigmoid 的导数是 b·(1 − b)，所以 SigmoidBackward0 保存了它的输出 b，"
                "以及 b 此刻的版本号 0。",
            ),
            "version_before = b._version": (
                "Reads b's version counter: 0, the version SigmoidBackward0 recorded when it "
                "saved b.",
                "读取 b 的版本计数器：0，也就是 SigmoidBackward0 保存 b 时记录的版本号。",
            ),
            "b.mul_(2)": (
                "An in-place change of a tensor saved for backward: b's version becomes 1, and "
                "b's grad_fn becomes MulBackward0 (which saves the factor 2), chained after "
                "SigmoidBackward0. Autograd does not stop it here; it checks when the saved "
                "tensor is used.",
                "原地修改一个为反向传播保存的张量：b 的版本号变为 1，b 的 grad_fn 变为 MulBackward0"
                "（它保存因子 2），接在 SigmoidBackward0 之后。autograd 不会在这里阻止它，"
                "而是在使用该保存张量时检查。",
            ),
            "version_after = b._version": (
                "Now 1: the b that SigmoidBackward0 saved at version 0 is stale.",
                "现在是 1：SigmoidBackward0 在版本号 0 时保存的 b 已经过期。",
            ),
            "b.sum().backward()": (
                "SigmoidBackward0 unpacks the saved b, finds version 1 where it saved version "
                "0, and raises RuntimeError: one of the variables needed for gradient "
                "computation has been modified by an inplace operation. Going on would give "
                "wrong gradients.",
                "SigmoidBackward0 取出保存的 b，发现版本号是 1 而保存时是 0，于是抛出 "
                "RuntimeError：one of the variables needed for gradient computation has been "
                "modified by an inplace operation。若继续计算，梯度就是错的。",
            ),
        },
    ),
}

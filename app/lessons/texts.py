"""Titles, summaries and line notes of the lessons, in English and Chinese.

Notes are keyed by an anchor: an exact substring that occurs on exactly one
line of the lesson's source. The registry resolves anchors to line numbers.
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
_REQUIRES_GRAD = (
    "requires_grad=True makes w1 a leaf that autograd tracks: every operation that "
    "uses it is recorded as a node of a graph, and after backward w1.grad holds "
    "d loss / d w1.",
    "requires_grad=True 让 w1 成为 autograd 跟踪的叶子张量：用到它的每个运算都会被记录为"
    "计算图中的一个节点，反向传播之后 w1.grad 中保存的就是 d loss / d w1。",
)
_BACKWARD = (
    "backward() walks the graph from the loss back to the leaves, applying the chain "
    "rule node by node, and adds each leaf's gradient into its .grad. The tensors the "
    "graph saved for backward are freed afterwards.",
    "backward() 从 loss 出发沿计算图反向走到叶子，逐个节点应用链式法则，并把每个叶子的梯度"
    "累加到它的 .grad 中。之后，计算图为反向传播保存的张量会被释放。",
)
_NO_GRAD = (
    "The update must not become part of the graph: under torch.no_grad() operations "
    "are not recorded, and changing a leaf that requires grad in place is allowed.",
    "参数更新不应成为计算图的一部分：在 torch.no_grad() 中运算不会被记录，"
    "并且允许原地修改需要梯度的叶子张量。",
)
_IN_PLACE_UPDATE = (
    "-= changes w1 in place, so w1 stays the same leaf tensor (its version counter "
    "goes up); w1 = w1 - ... would make a new tensor that is no longer a leaf.",
    "-= 原地修改 w1，所以 w1 仍是同一个叶子张量（版本计数器加一）；"
    "而 w1 = w1 - ... 会产生一个新的、不再是叶子的张量。",
)
_ZERO = (
    "backward() adds into .grad instead of overwriting it, so that gradients of several "
    "losses can add up. Without zeroing, each iteration would step along the sum of all "
    "gradients so far: try zero_grad=false.",
    "backward() 是把梯度累加到 .grad 上，而不是覆盖它，这样多个损失的梯度可以相加。"
    "如果不清零，每次迭代都会沿着迄今所有梯度之和更新：试试 zero_grad=false。",
)
_ITEM = (
    ".item() copies the scalar loss out of the tensor into a Python float, for the loss chart.",
    ".item() 把标量损失从张量中取出，变成 Python 浮点数，用于绘制损失曲线。",
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
_SEQUENTIAL = (
    "nn.Sequential runs its modules in order. Each Linear owns a weight and a bias, "
    "Parameters with requires_grad=True, randomly initialised when the layer is built.",
    "nn.Sequential 依次运行其中的模块。每个 Linear 拥有一个权重和一个偏置，它们都是"
    " requires_grad=True 的 Parameter，在创建层时随机初始化。",
)

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
            "rng = np.random.default_rng(seed)": (
                "One seeded generator draws x, y, w1 and w2 in this order, so the same "
                "config always gives the same numbers.",
                "用同一个带种子的生成器依次生成 x、y、w1、w2，因此相同的配置总得到相同的数值。",
            ),
            "h = x.dot(w1)": (
                "Layer 1: h = x · w1, the N × H hidden pre-activations.",
                "第一层：h = x · w1，得到 N × H 的隐藏层激活前的值。",
            ),
            "h_relu = np.maximum(h, 0)": (
                "ReLU keeps the positive entries and zeroes the rest. h is kept too: "
                "the backward pass needs to know where it was negative.",
                "ReLU 保留正值，其余置零。h 也要保留：反向传播需要知道它在哪些位置为负。",
            ),
            "loss = np.square(y_pred - y).sum()": (
                "The loss is the sum of squared errors, Σ (y_pred − y)².",
                "损失是误差平方和 Σ (y_pred − y)²。",
            ),
            "grad_y_pred = 2.0 * (y_pred - y)": _CHAIN_Y_PRED,
            "grad_w2 = h_relu.T.dot(grad_y_pred)": _CHAIN_W2,
            "grad_h_relu = grad_y_pred.dot(w2.T)": _CHAIN_H_RELU,
            "grad_h[h < 0] = 0": _CHAIN_RELU,
            "grad_w1 = x.T.dot(grad_h)": _CHAIN_W1,
            "w1 -= learning_rate * grad_w1": _DESCENT,
            "hand_grad_w1 = x.T.dot(": (
                "The hand-written gradients once more, at the final weights: "
                "(h_final >= 0) is the ReLU mask of grad_h[h < 0] = 0.",
                "在最终权重处再手工计算一次梯度：(h_final >= 0) 就是 grad_h[h < 0] = 0 "
                "所表示的 ReLU 掩码。",
            ),
            "loss_t.backward()": (
                "Autograd differentiates the same function of the same float64 arrays.",
                "autograd 对同一组 float64 数组上的同一个函数求导。",
            ),
            "max_abs_diff = max(": (
                "The largest absolute difference between the hand-written gradients and "
                "autograd's. Only rounding separates them, so it is tiny.",
                "手写梯度与 autograd 梯度之间的最大绝对差。两者只差舍入误差，所以它非常小。",
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
            "x = torch.randn(N, D_in, device=device)": (
                "torch.manual_seed(seed) fixed the random stream; creating the tensors "
                "directly on device lets the same code run on the CPU or a GPU.",
                "torch.manual_seed(seed) 固定了随机数序列；直接在 device 上创建张量，"
                "同一份代码就能在 CPU 或 GPU 上运行。",
            ),
            "h_relu = h.clamp(min=0)": (
                "clamp(min=0) is ReLU on tensors: negative entries become 0.",
                "clamp(min=0) 就是张量上的 ReLU：负值变为 0。",
            ),
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
            "x = torch.randn(N, D_in, device=device)": (
                "x and y do not require grad: autograd computes no gradient for them.",
                "x 和 y 不需要梯度：autograd 不会为它们计算梯度。",
            ),
            "w1 = torch.randn(D_in, H, device=device, requires_grad=True)": _REQUIRES_GRAD,
            "y_pred = x.mm(w1).clamp(min=0).mm(w2)": (
                "Each operation on a tensor that requires grad returns a tensor with a "
                "grad_fn, the backward node that will compute its gradient (MmBackward0, "
                "ClampMinBackward0, …). The graph is built as the code runs.",
                "对需要梯度的张量做运算，得到的张量带有 grad_fn，即将来计算其梯度的反向节点"
                "（MmBackward0、ClampMinBackward0……）。计算图是在代码运行时建立的。",
            ),
            "loss = (y_pred - y).pow(2).sum()": (
                "The loss is a scalar tensor; its grad_fn is the root of the graph.",
                "损失是一个标量张量；它的 grad_fn 是计算图的根。",
            ),
            "    loss.backward()": _BACKWARD,
            "with torch.no_grad():": _NO_GRAD,
            "w1 -= learning_rate * w1.grad": _IN_PLACE_UPDATE,
            "w1.grad.zero_()": _ZERO,
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
            "class MyReLU(torch.autograd.Function):": (
                "A Function subclass defines a new kind of graph node: a static forward that "
                "computes the output and a static backward that turns the output's gradient "
                "into the input's.",
                "Function 的子类定义了一种新的计算图节点：静态的 forward 计算输出，静态的 "
                "backward 把输出的梯度转换为输入的梯度。",
            ),
            "ctx.save_for_backward(input)": (
                "ctx is the context object of this one call, shared by forward and backward. "
                "save_for_backward keeps tensors for backward and records their versions, so "
                "a later in-place change is detected.",
                "ctx 是这一次调用的上下文对象，forward 和 backward 共用。save_for_backward "
                "为反向传播保存张量并记录其版本号，以便发现之后的原地修改。",
            ),
            "(input,) = ctx.saved_tensors": (
                "saved_tensors returns what forward saved, after checking that nothing "
                "modified it in place since.",
                "saved_tensors 返回 forward 保存的张量，并先检查它们之后没有被原地修改过。",
            ),
            "grad_input[input < 0] = 0": (
                "ReLU's backward: the gradient passes where the input was ≥ 0 and is zero "
                "elsewhere, the same rule as grad_h[h < 0] = 0 in the tensors lesson.",
                "ReLU 的反向传播：输入 ≥ 0 处梯度原样通过，其余处为零，"
                "与张量一课中的 grad_h[h < 0] = 0 相同。",
            ),
            "relu = MyReLU.apply": (
                "Never call forward directly: apply runs forward and, when an input requires "
                "grad, adds a MyReLUBackward node to the graph, linked to its inputs' nodes.",
                "不要直接调用 forward：apply 会运行 forward，并在输入需要梯度时把一个 "
                "MyReLUBackward 节点加入计算图，连接到输入的节点。",
            ),
            "y_pred = relu(x.mm(w1)).mm(w2)": (
                "The same function as in the autograd lesson, so the losses are the same.",
                "与 autograd 一课是同一个函数，所以损失也相同。",
            ),
            "loss.backward()": (
                "When the engine reaches the MyReLUBackward node it calls MyReLU.backward "
                "with the gradient of that node's output.",
                "反向引擎到达 MyReLUBackward 节点时，会用该节点输出的梯度调用 MyReLU.backward。",
            ),
            "with torch.no_grad():": _NO_GRAD,
            "w1.grad.zero_()": _ZERO,
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
            "def loss_fn(w1, w2, x, y):": (
                "The model as a pure function of its inputs: no state, no .grad.",
                "把模型写成只依赖输入的纯函数：没有状态，也没有 .grad。",
            ),
            "torch.func.grad_and_value(loss_fn, argnums=(0, 1))": (
                "grad_and_value transforms loss_fn into a function that returns the gradients "
                "with respect to arguments 0 and 1 (w1, w2) and the loss, like tf.gradients: "
                "gradients are values in the program, not stored in .grad.",
                "grad_and_value 把 loss_fn 变换为一个函数，返回对第 0、1 个参数（w1、w2）的梯度"
                "以及损失，类似 tf.gradients：梯度是程序中的值，而不是存到 .grad 中。",
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
            "from torch.fx.experimental.proxy_tensor import make_fx": (
                "Python if and for run only while the graph is traced, and only the branch "
                "taken then is recorded. Control flow that must vary from run to run has to "
                "be a graph op (TF1's tf.cond and tf.while_loop, torch.cond, torch.where).",
                "Python 的 if 和 for 只在追踪时执行，图中只记录当时走过的分支。每次运行都可能"
                "不同的控制流必须写成图运算（TF1 的 tf.cond 与 tf.while_loop、torch.cond、"
                "torch.where）。",
            ),
            "w1, w2, loss = static_graph(w1, w2, x, y)": (
                "Run: each iteration feeds the current tensors through the same graph, like "
                "sess.run with a feed_dict. No autograd graph is recorded: the gradient ops "
                "are already part of the static graph.",
                "运行：每次迭代把当前张量送入同一个图，就像带 feed_dict 的 sess.run。"
                "这里不记录 autograd 计算图：求梯度的运算已经是静态图的一部分。",
            ),
            "losses.append(loss.item())": _ITEM,
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
            "model = torch.nn.Sequential(": _SEQUENTIAL,
            ").to(device)": (
                ".to(device) moves every parameter of the model to device, in place on the "
                "module object.",
                ".to(device) 把模型的所有参数移动到 device 上，直接修改这个模块对象本身。",
            ),
            'loss_fn = torch.nn.MSELoss(reduction="sum")': _MSE,
            "y_pred = model(x)": _MODEL_CALL,
            "model.zero_grad()": (
                "Clears the gradients of the previous iteration: .grad of every parameter "
                "becomes None (PyTorch 2's default), and the next backward writes a fresh one.",
                "清除上一轮的梯度：每个参数的 .grad 变为 None（PyTorch 2 的默认行为），"
                "下一次反向传播会重新写入。",
            ),
            "loss.backward()": (
                "Backward fills .grad of every parameter: model.0.weight, model.0.bias, "
                "model.2.weight and model.2.bias.",
                "反向传播填写每个参数的 .grad：model.0.weight、model.0.bias、model.2.weight "
                "和 model.2.bias。",
            ),
            "with torch.no_grad():": _NO_GRAD,
            "param -= learning_rate * param.grad": _DESCENT,
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
            "model = torch.nn.Sequential(": _SEQUENTIAL,
            'loss_fn = torch.nn.MSELoss(reduction="sum")': _MSE,
            "optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)": (
                "Adam keeps state for each parameter, created at the first step(): step (a "
                "count), exp_avg (running mean of the gradient) and exp_avg_sq (running mean "
                "of its square), two extra tensors the size of the parameter.",
                "Adam 为每个参数保存状态，在第一次 step() 时创建：step（步数）、exp_avg（梯度的"
                "滑动平均）和 exp_avg_sq（梯度平方的滑动平均），即两个与参数同样大小的额外张量。",
            ),
            "y_pred = model(x)": _MODEL_CALL,
            "optimizer.zero_grad()": (
                "Clears .grad of every parameter the optimizer holds (to None by default), "
                "so this iteration's backward does not add onto the last one's.",
                "清除优化器持有的每个参数的 .grad（默认设为 None），这样本轮的反向传播不会"
                "叠加到上一轮的梯度上。",
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
            "class TwoLayerNet(torch.nn.Module):": (
                "Layers assigned as attributes in __init__ are registered as submodules, so "
                "model.parameters() finds their weights and biases.",
                "在 __init__ 中赋值为属性的层会被注册为子模块，因此 model.parameters() "
                "能找到它们的权重和偏置。",
            ),
            "super().__init__()": (
                "Call it first: it sets up the module's registries of parameters and submodules.",
                "必须先调用它：它为模块建立参数和子模块的注册表。",
            ),
            "h_relu = self.linear1(x).clamp(min=0)": (
                "forward says how the data flows, with any tensor operations. There is no "
                "backward method: autograd differentiates the operations forward ran.",
                "forward 描述数据如何流动，可以使用任意张量运算。这里没有 backward 方法："
                "autograd 会对 forward 执行过的运算求导。",
            ),
            "optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)": (
                "Plain SGD: step() does param -= lr * param.grad for every parameter, the "
                "update the nn lesson wrote by hand.",
                "普通的 SGD：step() 对每个参数执行 param -= lr * param.grad，"
                "也就是 nn 一课中手写的更新。",
            ),
            "y_pred = model(x)": (
                "model(x) goes through Module.__call__, which runs any hooks and then "
                "TwoLayerNet.forward.",
                "model(x) 经由 Module.__call__，先运行可能存在的钩子，再调用 TwoLayerNet.forward。",
            ),
            "optimizer.zero_grad()": (
                "Clears the gradients of the previous iteration; without it they would add up.",
                "清除上一轮的梯度；否则梯度会不断累加。",
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
            "self.middle_linear = torch.nn.Linear(H, H)": (
                "There is only one middle layer: every reuse in forward shares its weight "
                "and bias.",
                "中间层只有一个：forward 中的每次重复使用都共享它的权重和偏置。",
            ),
            "depth = self.rng.randint(0, 3)": (
                "Ordinary Python picks this forward pass's depth, 0 to 3 reuses, from the "
                "run's one seeded generator, so a run can be replayed exactly.",
                "由普通的 Python 代码从本次运行唯一的带种子生成器中选出这次前向传播的深度"
                "（重复 0 到 3 次），因此运行可以被精确重放。",
            ),
            "for _ in range(depth):": (
                "Dynamic graph: autograd records operations as they run, so a plain Python "
                "loop or if is the control flow, and each forward builds a new graph. A "
                "static graph would need the loop as a graph op.",
                "动态图：autograd 在运算执行时记录它们，所以普通的 Python 循环或 if 就是控制流，"
                "每次前向传播都会建立一张新图。静态图则需要把循环写成图运算。",
            ),
            "h_relu = self.middle_linear(h_relu).clamp(min=0)": (
                "Weight sharing: each reuse puts the same weight into the graph again; in "
                "backward the gradients of all uses are summed into middle_linear.weight.grad.",
                "权重共享：每次重复使用都把同一个权重再次放入计算图；反向传播时，各次使用的梯度"
                "相加后存入 middle_linear.weight.grad。",
            ),
            "rng = random.Random(seed)": (
                "One generator for the whole run, created from the seed and drawn once per "
                "forward pass.",
                "整个运行只用这一个由种子创建的生成器，每次前向传播抽取一次。",
            ),
            "SGD(model.parameters(), lr=learning_rate, momentum=momentum)": (
                "Momentum: SGD keeps a momentum_buffer per parameter, v ← momentum·v + grad, "
                "and steps param ← param − lr·v. Steady gradient directions build up speed; "
                "oscillations cancel out.",
                "动量：SGD 为每个参数保存一个 momentum_buffer，v ← momentum·v + grad，"
                "并执行 param ← param − lr·v。方向一致的梯度会累积速度，来回振荡则相互抵消。",
            ),
            "loss.backward()": (
                "The backward graph of this iteration has as many middle layers as this "
                "forward pass used.",
                "本轮的反向图中，中间层的数目与这次前向传播使用的次数相同。",
            ),
        },
    ),
    "inplace": LessonText(
        title="In-place operations and version counters",
        title_zh="原地操作与版本计数器",
        summary=(
            "In-place operations (the ones ending in _) change a tensor's memory and bump "
            "its version counter. Part 1 trains with a custom in-place ReLU that declares "
            "the change with ctx.mark_dirty and gets correct gradients. Part 2 modifies a "
            "tensor saved for backward, and autograd refuses to backpropagate: the program "
            "ends with PyTorch's RuntimeError."
        ),
        summary_zh=(
            "原地操作（名字以 _ 结尾）会改写张量的内存，并使其版本计数器加一。第一部分用一个"
            "自定义的原地 ReLU 训练，它用 ctx.mark_dirty 声明这种修改，得到正确的梯度。"
            "第二部分修改了一个为反向传播保存的张量，autograd 拒绝反向传播：程序以 PyTorch 的 "
            "RuntimeError 结束。"
        ),
        notes={
            "class MyReLU_(torch.autograd.Function):": (
                "A trailing underscore is PyTorch's mark of an in-place operation (clamp_, "
                "mul_, zero_): it overwrites the tensor instead of returning a new one.",
                "结尾的下划线是 PyTorch 对原地操作的标记（clamp_、mul_、zero_）：它直接改写张量，"
                "而不是返回一个新张量。",
            ),
            "ctx.mark_dirty(input)": (
                "mark_dirty tells autograd that forward changes input in place, so autograd "
                "makes the returned tensor the output of this node and bumps its version once "
                "more. Without it, h would still claim to be mm's unchanged output.",
                "mark_dirty 告诉 autograd：forward 会原地修改 input，于是 autograd 把返回的张量"
                "设为本节点的输出，并再把它的版本号加一。否则 h 仍会声称自己是 mm 未经修改的输出。",
            ),
            "input.clamp_(min=0)": (
                "clamp_ overwrites input, allocating nothing, and its version counter "
                "(._version) goes up: every tensor counts the in-place changes of its memory.",
                "clamp_ 原地改写 input，不分配新内存，并使其版本计数器（._version）加一："
                "每个张量都会统计其内存被原地修改的次数。",
            ),
            "ctx.save_for_backward(input)": (
                "This saves the output, after the change, and autograd records the version it "
                "has now, so the saved tensor is consistent.",
                "这里保存的是修改之后的输出，autograd 记录的是它此刻的版本号，"
                "所以保存的张量是一致的。",
            ),
            "return grad_output * (output > 0)": (
                "The input is gone, overwritten; the output tells where it was positive, "
                "which is all ReLU's backward needs.",
                "输入已被覆盖、不复存在；输出表明它在哪些位置为正，这正是 ReLU 反向传播所需要的。",
            ),
            "h_relu = MyReLU_.apply(h)": (
                "h_relu is h itself: its grad_fn is now MyReLU_Backward and its version went "
                "up. Changing h is safe because MmBackward0 saved x and w1, not h.",
                "h_relu 就是 h 本身：它的 grad_fn 变成了 MyReLU_Backward，版本号也增加了。"
                "修改 h 是安全的，因为 MmBackward0 保存的是 x 和 w1，而不是 h。",
            ),
            "w1 -= learning_rate * w1.grad": (
                "-= is in place too and bumps w1's version. It is safe: backward already used "
                "this iteration's graph, which saved w1, and freed it.",
                "-= 也是原地操作，会使 w1 的版本号加一。这是安全的：保存了 w1 的本轮计算图已经被"
                "反向传播用过并释放了。",
            ),
            "w1.grad.zero_()": _ZERO,
            "b = a.sigmoid()": (
                "sigmoid's derivative is b·(1 − b), so SigmoidBackward0 saves its output b, "
                "together with b's version at this moment, 0.",
                "sigmoid 的导数是 b·(1 − b)，所以 SigmoidBackward0 保存了它的输出 b，"
                "以及 b 此刻的版本号 0。",
            ),
            "b.mul_(2)": (
                "An in-place change of a tensor saved for backward: b's version becomes 1. "
                "Autograd does not stop it here; it checks when the saved tensor is used.",
                "原地修改一个为反向传播保存的张量：b 的版本号变为 1。autograd 不会在这里阻止它，"
                "而是在使用该保存张量时检查。",
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

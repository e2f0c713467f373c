"""What each kind of graph node does, in English and Chinese: NODE_NOTES[name] = (en, zh).

Names are `Node.name()` of the autograd nodes the lessons create (torch 2.13) and
`aten::<op>` for the nodes of the static_graph lesson's captured torch.fx graph.
Each note says what the node computes in backward and what it saved in forward,
and why. Checked on torch 2.13 with grad_fn.name() and the nodes' _saved_*
attributes. A note only names nodes that occur in every lesson holding that node
(tests/engine/test_notes.py).
"""

from __future__ import annotations

__all__ = ["NODE_NOTES"]

NODE_NOTES: dict[str, tuple[str, str]] = {
    # Autograd nodes.
    "torch::autograd::AccumulateGrad": (
        "The node of a leaf tensor that requires grad, such as a weight: it receives "
        "d loss / d leaf and adds it into the leaf's .grad, or stores it there when .grad is "
        "None. It saves no tensor, only holds the leaf itself. A leaf has one such node, so a "
        "weight used several times gets the sum of all its gradients in one call.",
        "需要梯度的叶子张量（例如权重）对应的节点：它接收 d loss / d 叶子，并累加到该叶子的 "
        ".grad 中；若 .grad 为 None，则直接存入。它不保存任何张量，只持有叶子本身。每个叶子只有"
        "一个这样的节点，所以被多次使用的权重会在一次调用中得到所有梯度之和。",
    ),
    "MmBackward0": (
        "Backward of a matrix product out = A · B: it sends grad · Bᵀ to A and Aᵀ · grad to "
        "B. In forward it saved each factor only if the other one needs a gradient, so "
        "x.mm(w1) saves just x (x needs no gradient, so w1 is not kept), while a product of "
        "two tensors that both need gradients saves both.",
        "矩阵乘积 out = A · B 的反向：把 grad · Bᵀ 传给 A，把 Aᵀ · grad 传给 B。前向时，只有当"
        "另一个因子需要梯度时才保存这个因子，所以 x.mm(w1) 只保存 x（x 不需要梯度，因此不保留 "
        "w1），而两个因子都需要梯度的乘积会把两者都保存。",
    ),
    "ClampBackward1": (
        "Backward of clamp(min=0), the ReLU written as clamp: it passes grad where the input "
        "was ≥ 0 and sends 0 where it was < 0. For that it saved its input (self, the tensor "
        "before clamping) and min = 0; max is None.",
        "clamp(min=0)（用 clamp 写成的 ReLU）的反向：在输入 ≥ 0 处让 grad 通过，在输入 < 0 处"
        "传回 0。为此它保存了输入（self，即截断前的张量）以及 min = 0；max 为 None。",
    ),
    "PowBackward0": (
        "Backward of d.pow(2), where d = y_pred − y: it sends grad · 2 · d. It saved its input "
        "d (self) and the exponent 2, the two things the derivative 2·d¹ needs.",
        "d.pow(2)（d = y_pred − y）的反向：传回 grad · 2 · d。它保存了输入 d（self）和指数 2，"
        "这正是导数 2·d¹ 所需要的。",
    ),
    "SubBackward0": (
        "Backward of a − b: it sends grad to a and −grad to b, here only to y_pred, since y "
        "needs no gradient. The derivative is a constant, so it saved no tensor, only "
        "alpha = 1 (a − alpha·b).",
        "a − b 的反向：把 grad 传给 a，把 −grad 传给 b；这里只传给 y_pred，因为 y 不需要梯度。"
        "导数是常数，所以它不保存张量，只保存 alpha = 1（a − alpha·b）。",
    ),
    "SumBackward0": (
        "Backward of .sum(), the root of the loss's graph: it expands the scalar gradient (1 "
        "when backward starts there) back to the shape of the summed tensor, N × D_out for "
        "the loss. It saved only that shape, not the tensor.",
        "求和 .sum() 的反向，也是损失计算图的根：把标量梯度（反向传播从这里开始时为 1）扩展回"
        "被求和张量的形状（对损失而言是 N × D_out）。它只保存了这个形状，不保存张量。",
    ),
    "MyReLUBackward": (
        "The node MyReLU.apply added: its backward is the lesson's MyReLU.backward, called "
        "with grad_output, d loss / d relu's output. It saved what forward passed to "
        "ctx.save_for_backward, the input x.mm(w1), which backward reads from "
        "ctx.saved_tensors to zero the gradient where the input was negative.",
        "MyReLU.apply 加入的节点：它的反向就是本课的 MyReLU.backward，调用时传入 grad_output，"
        "即 d loss / d（relu 的输出）。它保存了 forward 交给 ctx.save_for_backward 的张量，即输入 "
        "x.mm(w1)；backward 从 ctx.saved_tensors 取回它，把输入为负处的梯度置零。",
    ),
    "MyReLU_Backward": (
        "The node MyReLU_.apply added: its backward is MyReLU_.backward, which multiplies "
        "grad_output by (output > 0). It saved the output, h after clamp_, at version 2: the "
        "input no longer exists, and the output says where it was positive.",
        "MyReLU_.apply 加入的节点：它的反向就是 MyReLU_.backward，把 grad_output 乘以 "
        "(output > 0)。它保存的是输出，即 clamp_ 之后的 h，版本号为 2：输入已不复存在，"
        "而输出表明它在哪些位置为正。",
    ),
    "AddmmBackward0": (
        "Backward of a Linear layer, out = bias + input · weightᵀ computed as one addmm: the "
        "bias gets grad summed over the N rows, the input gets grad · weight, and weightᵀ "
        "gets inputᵀ · grad (TBackward0 then turns it into the weight's shape). In forward it "
        "saved the input only if the weight needs a gradient and weightᵀ only if the input "
        "does, so the first layer keeps x but not its weight.",
        "Linear 层的反向，该层以一次 addmm 计算 out = bias + input · weightᵀ：bias 得到按 N 行"
        "求和的 grad，input 得到 grad · weight，weightᵀ 得到 inputᵀ · grad（再由 TBackward0 "
        "转回权重的形状）。前向时，只有权重需要梯度才保存 input，只有 input 需要梯度才保存 "
        "weightᵀ，所以第一层保存了 x，却不保存它的权重。",
    ),
    "TBackward0": (
        "Backward of weight.t(), the transpose a Linear layer uses: it transposes the "
        "gradient back to the weight's shape and passes it to the weight's AccumulateGrad. A "
        "transpose needs no values, so it saved nothing.",
        "weight.t()（Linear 层所用的转置）的反向：把梯度转置回权重的形状，再交给该权重的 "
        "AccumulateGrad。转置不需要任何数值，所以它什么也不保存。",
    ),
    "ReluBackward0": (
        "Backward of nn.ReLU: it passes grad where the output is > 0 and sends 0 elsewhere. "
        "It saved its output (result), not its input: the output is enough to tell which "
        "units were active.",
        "nn.ReLU 的反向：在输出 > 0 处让 grad 通过，其余处传回 0。它保存的是输出（result）"
        "而不是输入：输出足以说明哪些单元被激活。",
    ),
    "MseLossBackward0": (
        "Backward of MSELoss(reduction='sum'), loss = Σ (y_pred − y)²: it sends "
        "grad · 2 (y_pred − y) to y_pred. It saved y_pred (self), the target y and the "
        "reduction (sum), everything that formula needs.",
        "MSELoss(reduction='sum') 的反向，loss = Σ (y_pred − y)²：把 grad · 2 (y_pred − y) "
        "传给 y_pred。它保存了 y_pred（self）、目标 y 以及归约方式（sum），即该公式所需的一切。",
    ),
    "MulBackward0": (
        "Backward of b.mul_(2): it sends grad · 2 on to SigmoidBackward0. It saved the other "
        "factor, 2, as a 0-dimensional tensor, and not b, since 2 needs no gradient.",
        "b.mul_(2) 的反向：把 grad · 2 继续传给 SigmoidBackward0。它保存了另一个因子 2"
        "（一个 0 维张量），而不保存 b，因为 2 不需要梯度。",
    ),
    "SigmoidBackward0": (
        "Backward of b = a.sigmoid(): it sends grad · b · (1 − b) to a, so it saved its "
        "output b (result) with b's version then, 0. After b.mul_(2) the saved b is stale, "
        "and this node raises the RuntimeError.",
        "b = a.sigmoid() 的反向：把 grad · b · (1 − b) 传给 a，因此它保存了输出 b（result）"
        "以及 b 当时的版本号 0。b.mul_(2) 之后，保存的 b 已过期，这个节点便抛出 RuntimeError。",
    ),
    # The static_graph lesson's captured graph: one node per aten op of the training step.
    # Nothing is "saved for backward" there: a forward value the gradient ops need is an
    # input of a later node and stays alive until its last use.
    "aten::mm": (
        "Matrix product. The captured step holds five: x · w1 and relu · w2 from the forward "
        "pass, and three gradient products traced from the backward nodes: reluᵀ · g "
        "(grad_w2), g · w2ᵀ (the gradient at the ReLU's output) and xᵀ · masked g (grad_w1).",
        "矩阵乘积。捕获的训练步骤中有五个：前向的 x · w1 和 relu · w2，以及从反向节点追踪得到的"
        "三个梯度乘积：reluᵀ · g（grad_w2）、g · w2ᵀ（ReLU 输出处的梯度）和 xᵀ · 掩码后的 g"
        "（grad_w1）。",
    ),
    "aten::clamp": (
        "clamp(x · w1, 0): the forward pass's ReLU. Nothing is saved for backward in a static "
        "graph: the ReLU's input x · w1 simply stays alive until aten::ge, a later node, "
        "has used it.",
        "clamp(x · w1, 0)：前向传播中的 ReLU。静态图中没有“为反向传播保存”这回事：ReLU 的输入 "
        "x · w1 只是一直保留，直到后面的节点 aten::ge 用过它。",
    ),
    "aten::sub": (
        "Three subtractions: y_pred − y in the loss, and the update's w1 − lr · grad_w1 and "
        "w2 − lr · grad_w2, which return new weights instead of changing them in place.",
        "三个减法：损失中的 y_pred − y，以及更新中的 w1 − lr · grad_w1 和 w2 − lr · grad_w2；"
        "更新返回新的权重，而不是原地修改。",
    ),
    "aten::pow": (
        "pow(y_pred − y, 2) in the loss, and pow(y_pred − y, 1.0) in the gradient: "
        "PowBackward0's rule 2·d¹, traced literally, exponent 1 and all.",
        "损失中的 pow(y_pred − y, 2)，以及梯度中的 pow(y_pred − y, 1.0)：这是 PowBackward0 "
        "的规则 2·d¹，连指数 1 都被原样追踪下来。",
    ),
    "aten::sum": (
        "The loss: the sum of the squared errors, a 0-dimensional tensor that the graph "
        "returns next to the new weights.",
        "损失：误差平方和，一个 0 维张量，计算图把它和新的权重一起返回。",
    ),
    "aten::ones_like": (
        "The start of the traced backward pass: d loss / d loss = 1, a tensor of ones shaped "
        "like the loss.",
        "追踪下来的反向传播的起点：d loss / d loss = 1，一个与损失形状相同的全 1 张量。",
    ),
    "aten::expand": (
        "SumBackward0's rule: it expands the 1 to N × D_out, one gradient per squared error. "
        "The shape is baked into the graph as a constant.",
        "SumBackward0 的规则：把 1 扩展为 N × D_out，每个误差平方对应一个梯度。这个形状作为常量"
        "固定在图中。",
    ),
    "aten::mul": (
        "Four products: 2 · (y_pred − y), its product with the expanded ones (the gradient at "
        "y_pred), then learning_rate · grad_w1 and learning_rate · grad_w2, with "
        "learning_rate baked in as a constant.",
        "四个乘法：2 · (y_pred − y)、它与扩展后的全 1 张量之积（y_pred 处的梯度），以及 "
        "learning_rate · grad_w1 和 learning_rate · grad_w2，其中 learning_rate "
        "作为常量固定在图中。",
    ),
    "aten::t": (
        "Transposes for the gradient products: of the ReLU's output, of w2 and of x.",
        "为计算梯度乘积所做的转置：分别转置 ReLU 的输出、w2 和 x。",
    ),
    "aten::scalar_tensor": (
        "A 0-dimensional tensor holding 0.0: the value aten::where puts where the ReLU was off.",
        "一个值为 0.0 的 0 维张量：aten::where 在 ReLU 未激活处填入的值。",
    ),
    "aten::ge": (
        "x · w1 ≥ 0: the ReLU mask that ClampBackward1 computes from its saved input, here an "
        "op of its own in the graph.",
        "x · w1 ≥ 0：ClampBackward1 根据其保存的输入计算的 ReLU 掩码，"
        "在这里成为图中一个单独的运算。",
    ),
    "aten::where": (
        "where(mask, g, 0): the gradient through the ReLU, g where x · w1 ≥ 0 and 0 elsewhere, "
        "the grad_h[h < 0] = 0 of the hand-written lessons.",
        "where(mask, g, 0)：穿过 ReLU 的梯度，在 x · w1 ≥ 0 处为 g，其余处为 0，"
        "即手写课程中的 grad_h[h < 0] = 0。",
    ),
}

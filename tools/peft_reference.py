"""The PyTorch yardstick of tools/bench.py (`--reference peft`): the same shapes with
transformers' T5 and, in prompt mode, PEFT's encoder-only prompt tuning
(`PromptTuningConfig(num_transformer_submodules=1)`) with Adafactor lr 0.3; CUDA when torch
sees a GPU, else CPU."""
import time

from spot_jax.model.config import T5Config
import step_timing  # tools/


def torch_device():
  """CUDA when torch sees a GPU (the accelerator run compares on the same chip), else CPU."""
  import torch
  return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_peft(args, c: T5Config) -> dict:
  import numpy as np
  import torch
  import transformers

  torch.manual_seed(args.seed)
  hf_config = transformers.T5Config(
      vocab_size=c.vocab_size, d_model=c.emb_dim, d_kv=c.head_dim, num_heads=c.num_heads,
      d_ff=c.mlp_dim, num_layers=c.num_encoder_layers, num_decoder_layers=c.num_decoder_layers,
      relative_attention_num_buckets=c.relative_attention_num_buckets,
      relative_attention_max_distance=c.relative_attention_max_distance,
      feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0,
      dropout_rate=c.dropout_rate)
  model = transformers.T5ForConditionalGeneration(hf_config)
  # transformers 5 ties lm_head to the embedding whatever the config says: untie (T5 v1.1),
  # scaled as our init (fan-in), so that the loss is a plausible number.
  model.lm_head.weight = torch.nn.Parameter(
      torch.randn(c.vocab_size, c.emb_dim) * c.emb_dim ** -0.5)
  device = torch_device()
  model.to(device)
  autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.dtype == "bfloat16"
              else torch.autocast(device.type, enabled=False))
  rng = np.random.RandomState(args.seed)
  tokens = lambda length: torch.tensor(
      step_timing.random_tokens(rng, args.batch, length, c.vocab_size)).to(device)
  inputs, labels = tokens(args.inputs), tokens(args.targets)
  mask = torch.ones_like(inputs)
  platform = "gpu" if device.type == "cuda" else "cpu"
  sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

  def device_peak():
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None

  if args.mode == "forward":
    model.eval()
    dec_in = torch.cat([torch.zeros_like(labels[:, :1]), labels[:, :-1]], dim=1)

    def run():
      with torch.no_grad(), autocast:
        logits = model(input_ids=inputs, attention_mask=mask, decoder_input_ids=dec_in,
                       use_cache=False).logits
      sync()
      return logits

    rss_compiled = step_timing.peak_rss_gb()
    start = time.perf_counter()
    run()  # the first call stands in for compilation
    compile_s = time.perf_counter() - start
    times, cpu, logits = step_timing.timed(run, args.steps, args.warmup)
    return dict(times=times, cpu=cpu, rss_compiled=rss_compiled, compile_s=compile_s,
                summary=float(logits[:, -1, :8].mean()), platform=platform,
                device_peak_gb=device_peak(),
                versions={"torch": torch.__version__, "transformers": transformers.__version__})

  if args.mode == "prompt":
    import peft
    pt_config = peft.PromptTuningConfig(task_type=peft.TaskType.SEQ_2_SEQ_LM,
                                        num_virtual_tokens=args.prompt_length,
                                        num_transformer_submodules=1)
    model = peft.get_peft_model(model, pt_config)
    lr = 0.3
  else:
    lr = 1e-3
  model.train()
  trainable = [p for p in model.parameters() if p.requires_grad]
  if args.peft_optimizer == "adafactor":
    opt = transformers.optimization.Adafactor(trainable, lr=lr, scale_parameter=False,
                                              relative_step=False, warmup_init=False,
                                              weight_decay=1e-5 if args.mode == "prompt" else 0.0)
  else:
    opt = torch.optim.AdamW(trainable, lr=lr)
  micro = args.batch // args.microbatches

  def run():
    opt.zero_grad(set_to_none=True)
    total = 0.0
    for i in range(args.microbatches):
      sl = slice(i * micro, (i + 1) * micro)
      with autocast:
        loss = model(input_ids=inputs[sl], attention_mask=mask[sl], labels=labels[sl]).loss
      (loss / args.microbatches).backward()
      total += float(loss.detach()) / args.microbatches
    opt.step()
    sync()
    return total

  rss_compiled = step_timing.peak_rss_gb()
  start = time.perf_counter()
  run()  # first step: allocator and thread-pool warm-up, reported as "compile"
  compile_s = time.perf_counter() - start
  times, cpu, loss = step_timing.timed(run, args.steps, args.warmup)
  return dict(times=times, cpu=cpu, rss_compiled=rss_compiled, compile_s=compile_s,
              summary=loss, platform=platform, device_peak_gb=device_peak(),
              versions={"torch": torch.__version__, "transformers": transformers.__version__,
                        "peft": peft.__version__ if args.mode == "prompt" else None})

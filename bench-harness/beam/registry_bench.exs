# Elixir's own Registry under the workloads of `regent-bench compare`, run by its `beam`
# peer. Prints JSON objects on stdout, one per line: {"started": result} with the releases
# and sizes and no workload yet, {"running": name} as each workload starts, {"finished": figure} once its checks
# pass, and last the whole result. A run the harness stops part-way keeps its finished
# figures. Progress goes to stderr.
#
#     elixir --erl "+P 4000000" bench-harness/beam/registry_bench.exs --keys 1000000 --threads 2
#
# --threads sets the schedulers online and the registry's partitions. Keys are the integers
# 0..keys-1 (ETS hashes them); misses use keys..2*keys-1. Lookups visit keys in a scattered
# order, i = j * stride mod keys, as the Rust side does, so that no peer gets the memory
# locality of registration order.
#
# A BEAM registration comes from a live process, and 10M processes would not fit in
# memory, so owner processes register `keys_per_process` keys each (reported in the JSON).
# Exits are asynchronous on the BEAM: the registry's partitions clean up after a process
# dies, so process_down and the read mix are timed until `Registry.count/1` says they have.
#
# Workloads, each a figure in Mops/s unless noted:
#   register           owners register their keys into an empty registry
#   register_conflict  other processes try to register every key and are refused
#   lookup_hit         every key looked up (owner and value checked)
#   lookup_miss        as many lookups of keys nobody holds
#   unregister         owners unregister every key
#   process_down       every owner is killed; timed until the registry is empty
#   read_mix           90% lookups, 5% registrations by new processes, 5% exits of those
#                      processes; timed until the registry has cleaned up the exits
#   memory             bytes per registration: words of the registry's ETS tables
#                      (:ets.info(t, :memory), every table its supervision tree owns)
#                      after registering, less before, times the word size
#   dispatch           entries visited per second by Registry.dispatch/3 on one topic of
#                      min(keys, 1M) entries in a duplicate registry
#   join_leave         register + unregister churn on a hot topic of a duplicate registry
#                      already holding --hot entries (each call is one operation)

defmodule RegistryBench do
  @moduledoc false

  @keys_per_process 10
  @mix 20
  @mix_register 18
  @mix_down 19
  @strides [1_000_003, 1_000_033, 1_000_037, 999_983]
  @max_topic 1_000_000
  @max_churn 1_000_000

  def main(argv) do
    {opts, _rest, invalid} =
      OptionParser.parse(argv,
        strict: [keys: :integer, threads: :integer, hot: :integer, workers: :integer]
      )

    if invalid != [], do: raise(ArgumentError, "unknown options: #{inspect(invalid)}")

    n = Keyword.get(opts, :keys, 100_000)
    threads = min(Keyword.get(opts, :threads, 1), :erlang.system_info(:schedulers))
    if n < 1 or threads < 1, do: raise(ArgumentError, "--keys and --threads must be positive")

    :erlang.system_flag(:schedulers_online, threads)
    workers = Keyword.get(opts, :workers, threads * 2)
    hot = Keyword.get(opts, :hot, 1_000)

    # Owners and read-mix registrants must fit under the process limit.
    limit = :erlang.system_info(:process_limit)
    per_process = max(@keys_per_process, div(n, max(div(limit, 2), 1)) + 1)

    ctx = %{
      n: n,
      threads: threads,
      workers: workers,
      per_process: per_process,
      step: rem(stride(n), n)
    }

    log("Elixir #{System.version()} / OTP #{System.otp_release()}: #{n} keys, " <>
          "#{threads} schedulers, #{per_process} keys per owner")

    result = %{
      "peer" => "beam",
      "elixir" => System.version(),
      "otp" => System.otp_release(),
      "keys" => n,
      "threads" => threads,
      "partitions" => threads,
      "keys_per_process" => per_process,
      "workloads" => []
    }

    # What a run stopped part-way (by the harness's timeout) still needs: the result with
    # no workload yet, then each workload's figure as soon as it is checked.
    report(%{"started" => result})
    unique = unique_workloads(ctx)
    duplicate = duplicate_workloads(ctx, hot)
    report(%{result | "workloads" => unique ++ duplicate})
  end

  # ---------- unique registry ----------

  defp unique_workloads(%{n: n, threads: threads} = ctx) do
    name = RegentBench.Unique
    {:ok, _} = Registry.start_link(keys: :unique, name: name, partitions: threads)
    ctx = Map.put(ctx, :reg, name)
    words_before = registry_words(name)
    ets_before = :erlang.memory(:ets)

    owners = spawn_owners(ctx)
    register = timed("register", n, fn -> command_owners(owners, :register) end)
    expect("register", register.result, n)
    expect("register count", Registry.count(name), n)
    register = finished(register)
    memory = finished(memory(name, words_before, ets_before, n))

    conflict =
      timed("register_conflict", n, fn ->
        parallel(ctx, fn i ->
          match?({:error, {:already_registered, _}}, Registry.register(name, i, i))
        end)
      end)

    expect("register_conflict", conflict.result, n)
    conflict = finished(conflict)

    hit =
      timed("lookup_hit", n, fn ->
        parallel(ctx, fn i -> match?([{_pid, ^i}], Registry.lookup(name, i)) end)
      end)

    expect("lookup_hit", hit.result, n)
    hit = finished(hit)

    miss =
      timed("lookup_miss", n, fn ->
        parallel(ctx, fn i -> Registry.lookup(name, n + i) == [] end)
      end)

    expect("lookup_miss", miss.result, n)
    miss = finished(miss)

    unregister = timed("unregister", n, fn -> command_owners(owners, :unregister) end)
    expect("unregister", unregister.result, n)
    expect("unregister count", Registry.count(name), 0)
    unregister = finished(unregister)

    expect("register again", command_owners(owners, :register), n)

    down =
      timed("process_down", n, fn ->
        Enum.each(owners, &Process.exit(&1, :kill))
        await_count(name, 0)
      end)

    down = finished(down)
    owners = spawn_owners(ctx)
    expect("register again", command_owners(owners, :register), n)

    mix =
      timed("read_mix", n, fn ->
        ok = parallel_mix(ctx)
        await_count(name, n)
        ok
      end)

    expect("read_mix", mix.result, n)
    mix = finished(mix)
    Enum.each(owners, &Process.exit(&1, :kill))
    await_count(name, 0)

    [register, conflict, hit, miss, unregister, down, mix, memory]
  end

  # One owner process per `per_process` consecutive keys; it registers or unregisters them
  # on command and replies with how many calls succeeded.
  defp spawn_owners(%{n: n, per_process: per_process, reg: reg}) do
    for first <- Enum.take_every(0..(n - 1), per_process) do
      last = min(first + per_process, n)
      spawn(fn -> owner_loop(reg, first, last) end)
    end
  end

  defp owner_loop(reg, first, last) do
    receive do
      {:register, from, ref} ->
        ok = count_range(first, last, fn i -> match?({:ok, _}, Registry.register(reg, i, i)) end)
        send(from, {ref, ok})

      {:unregister, from, ref} ->
        ok = count_range(first, last, fn i -> Registry.unregister(reg, i) == :ok end)
        send(from, {ref, ok})
    end

    owner_loop(reg, first, last)
  end

  defp command_owners(owners, command) do
    ref = make_ref()
    Enum.each(owners, &send(&1, {command, self(), ref}))
    Enum.reduce(owners, 0, fn _, acc -> acc + await(ref, "owner #{command}") end)
  end

  # The read mix, over `workers` processes. A registration spawns a process that registers
  # a key nobody holds and stays alive; an exit kills the newest such process of the same
  # worker (a lookup when it has none). Leftovers are killed at the end.
  defp parallel_mix(%{reg: reg, n: n, step: step} = ctx) do
    spread(ctx, fn first, last ->
      {ok, left} = mix_loop(first, last, rem(first * step, n), reg, n, step, [], 0)
      Enum.each(left, &Process.exit(&1, :kill))
      ok
    end)
  end

  defp mix_loop(j, last, _i, _reg, _n, _step, stack, ok) when j >= last, do: {ok, stack}

  defp mix_loop(j, last, i, reg, n, step, stack, ok) do
    {success, stack} =
      case rem(i, @mix) do
        @mix_register ->
          {true, [registrant(reg, n + i) | stack]}

        @mix_down when stack != [] ->
          [pid | rest] = stack
          Process.exit(pid, :kill)
          {true, rest}

        _ ->
          {match?([{_pid, ^i}], Registry.lookup(reg, i)), stack}
      end

    mix_loop(j + 1, last, next(i, step, n), reg, n, step, stack, ok + if(success, do: 1, else: 0))
  end

  defp registrant(reg, key) do
    parent = self()
    ref = make_ref()

    pid =
      spawn(fn ->
        {:ok, _} = Registry.register(reg, key, key)
        send(parent, {ref, 1})

        receive do
          :stop -> :ok
        end
      end)

    await(ref, "registrant of #{key}")
    pid
  end

  # Bytes per registration from the registry's own tables; the whole ETS allocation of the
  # node if the tables cannot be found.
  defp memory(name, words_before, ets_before, n) do
    words_after = registry_words(name)

    {bytes, method} =
      if is_integer(words_before) and is_integer(words_after) and words_after > words_before do
        {(words_after - words_before) * :erlang.system_info(:wordsize), "ets_table_words"}
      else
        {:erlang.memory(:ets) - ets_before, "erlang_memory_ets"}
      end

    %{"name" => "memory", "bytes_per_entry" => bytes / n, "method" => method}
  end

  defp registry_words(name) do
    owners = MapSet.new(tree(Process.whereis(name)))

    words =
      for table <- :ets.all(), MapSet.member?(owners, :ets.info(table, :owner)) do
        :ets.info(table, :memory)
      end

    case Enum.filter(words, &is_integer/1) do
      [] -> nil
      words -> Enum.sum(words)
    end
  end

  # A supervisor and every process under it.
  defp tree(nil), do: []

  defp tree(pid) do
    children =
      try do
        Supervisor.which_children(pid)
      catch
        :exit, _ -> []
      end

    [
      pid
      | Enum.flat_map(children, fn
          {_id, child, :supervisor, _} when is_pid(child) -> tree(child)
          {_id, child, _type, _} when is_pid(child) -> [child]
          _ -> []
        end)
    ]
  end

  defp await_count(name, count) do
    if Registry.count(name) != count do
      Process.sleep(1)
      await_count(name, count)
    end
  end

  # ---------- duplicate registry ----------

  defp duplicate_workloads(%{n: n, threads: threads, workers: workers}, hot) do
    name = RegentBench.Duplicate
    {:ok, _} = Registry.start_link(keys: :duplicate, name: name, partitions: threads)

    # The big topic: `topic` entries held by a few processes, each registering it repeatedly.
    topic = min(n, @max_topic)
    holders = max(1, min(topic, workers * 4))
    hold(name, :topic, topic, holders)
    rounds = max(1, div(n, topic * threads))
    visited = :counters.new(1, [:write_concurrency])

    dispatch =
      timed("dispatch", topic * rounds * threads, fn ->
        run_each(threads, fn _w ->
          for _ <- 1..rounds do
            Registry.dispatch(name, :topic, fn entries ->
              seen = Enum.reduce(entries, 0, fn {_pid, _value}, acc -> acc + 1 end)
              :counters.add(visited, 1, seen)
            end)
          end

          0
        end)
      end)

    expect("dispatch", :counters.get(visited, 1), topic * rounds * threads)
    dispatch = finished(Map.put(dispatch, "topic_entries", topic))

    # The hot topic: `hot` standing entries, and workers joining and leaving it.
    hold(name, :hot, hot, max(1, min(hot, workers)))
    cycles = max(1, div(min(n, @max_churn), 2 * workers))

    churn =
      timed("join_leave", 2 * cycles * workers, fn ->
        run_each(workers, fn w ->
          for _ <- 1..cycles do
            {:ok, _} = Registry.register(name, :hot, w)
            :ok = Registry.unregister(name, :hot)
          end

          0
        end)
      end)

    churn = finished(Map.put(churn, "topic_entries", hot))
    [dispatch, churn]
  end

  # `holders` processes registering `key` `entries` times in all, then staying alive.
  defp hold(name, key, entries, holders) do
    ref = make_ref()
    parent = self()

    for h <- 0..(holders - 1) do
      count = div((h + 1) * entries, holders) - div(h * entries, holders)

      spawn(fn ->
        if count > 0, do: Enum.each(1..count, fn v -> {:ok, _} = Registry.register(name, key, v) end)
        send(parent, {ref, count})

        receive do
          :stop -> :ok
        end
      end)
    end

    held = Enum.reduce(1..holders, 0, fn _, acc -> acc + await(ref, "holder of #{key}") end)
    expect("#{key} entries", held, entries)
  end

  # ---------- running and timing ----------

  defp timed(name, ops, fun) do
    log("#{name} ...")
    report(%{"running" => name})
    start = System.monotonic_time(:nanosecond)
    result = fun.()
    ns = max(System.monotonic_time(:nanosecond) - start, 1)

    %{
      "name" => name,
      "ops" => ops,
      "seconds" => ns / 1.0e9,
      "mops" => ops * 1.0e3 / ns,
      :result => result
    }
  end

  # Calls `op.(i)` for every key index, spread over `workers` processes in scattered order.
  # Returns how many calls returned true.
  defp parallel(%{n: n, step: step} = ctx, op) do
    spread(ctx, fn first, last -> scatter(first, last, rem(first * step, n), n, step, op, 0) end)
  end

  defp scatter(j, last, _i, _n, _step, _op, ok) when j >= last, do: ok

  defp scatter(j, last, i, n, step, op, ok) do
    ok = if op.(i), do: ok + 1, else: ok
    scatter(j + 1, last, next(i, step, n), n, step, op, ok)
  end

  defp next(i, step, n) do
    i = i + step
    if i >= n, do: i - n, else: i
  end

  # Splits 0..n-1 into `workers` contiguous ranges and runs `fun.(first, last)` on each in
  # its own process. Returns the sum of what they return.
  defp spread(%{n: n, workers: workers}, fun) do
    run_each(workers, fn w -> fun.(div(w * n, workers), div((w + 1) * n, workers)) end)
  end

  defp run_each(count, fun) do
    parent = self()
    ref = make_ref()

    for w <- 0..(count - 1) do
      spawn_link(fn -> send(parent, {ref, fun.(w)}) end)
    end

    Enum.reduce(1..count, 0, fn _, acc -> acc + await(ref, "worker") end)
  end

  defp await(ref, what) do
    receive do
      {^ref, value} -> value
    after
      600_000 -> raise "timed out waiting for #{what}"
    end
  end

  # How many of fun.(i) for i in first..last-1 return true.
  defp count_range(first, last, fun), do: count_range(first, last, fun, 0)

  defp count_range(i, last, _fun, ok) when i >= last, do: ok

  defp count_range(i, last, fun, ok),
    do: count_range(i + 1, last, fun, if(fun.(i), do: ok + 1, else: ok))

  # A stride coprime with n, so that i = j * stride mod n visits every index once.
  defp stride(n), do: Enum.find(@strides, 1, &(Integer.gcd(&1, n) == 1))

  defp expect(_what, actual, actual), do: :ok

  defp expect(what, actual, expected),
    do: raise("#{what}: expected #{expected}, got #{inspect(actual)}")

  defp log(message), do: IO.puts(:stderr, "beam: " <> message)

  # A workload's figure, once its checks passed: reported at once, so that a run stopped
  # later keeps it. Returns the figure without its check value.
  defp finished(figure) do
    figure = Map.delete(figure, :result)
    report(%{"finished" => figure})
    figure
  end

  # One JSON object on a line of stdout.
  defp report(object), do: IO.puts(IO.iodata_to_binary(json(object)))

  # ---------- JSON (Elixir before 1.18 has no encoder) ----------

  defp json(nil), do: "null"
  defp json(true), do: "true"
  defp json(false), do: "false"
  defp json(value) when is_integer(value), do: Integer.to_string(value)
  defp json(value) when is_float(value), do: :erlang.float_to_binary(value, [{:decimals, 6}, :compact])
  defp json(value) when is_atom(value), do: json(Atom.to_string(value))

  defp json(value) when is_binary(value) do
    escaped =
      value
      |> String.replace("\\", "\\\\")
      |> String.replace("\"", "\\\"")
      |> String.replace("\n", "\\n")

    [?", escaped, ?"]
  end

  defp json(value) when is_list(value), do: ["[", value |> Enum.map(&json/1) |> Enum.intersperse(","), "]"]

  defp json(value) when is_map(value) do
    fields = Enum.map(value, fn {k, v} -> [json(to_string(k)), ":", json(v)] end)
    ["{", Enum.intersperse(fields, ","), "}"]
  end
end

RegistryBench.main(System.argv())

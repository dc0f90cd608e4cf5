// The node page's process tables: which PIDs hold GPU memory, the host's top processes, and
// which of them run a perfmon job: a running job records the host PID of the process measuring it.
(function () {
  "use strict";
  const units = window.perfmonUnits;
  const MAX_ROWS = 50;

  // hostSort: buttons with data-sort="cpu" / "rss" choosing the host table's order.
  function create(gpuTable, hostTable, config, hostSortButtons) {
    let hostSort = "cpu";
    let lastTop = null;
    const running = new Map(config.runningJobs.map((job) => [job.id, job]));

    function jobOf(pid) {
      for (const job of running.values()) {
        if (job.pid === pid) return job;
      }
      return null;
    }

    function cell(text, className, title) {
      const td = document.createElement("td");
      td.textContent = text;
      if (className) td.className = className;
      if (title) td.title = title;
      return td;
    }

    function jobCell(pid) {
      const td = document.createElement("td");
      const job = jobOf(pid);
      if (job) {
        const link = document.createElement("a");
        link.href = config.jobUrl.replace("/0/", "/" + job.id + "/");
        link.textContent = "perfmon job #" + job.id;
        link.className = "job-link";
        td.appendChild(link);
      }
      return td;
    }

    function fill(table, rows, emptyText) {
      const body = table.tBodies[0];
      if (!rows.length) {
        const tr = document.createElement("tr");
        tr.className = "empty";
        const td = cell(emptyText, "muted");
        td.colSpan = table.tHead.rows[0].cells.length;
        tr.appendChild(td);
        body.replaceChildren(tr);
        return;
      }
      body.replaceChildren(...rows.slice(0, MAX_ROWS));
    }

    function gpuRows(sample) {
      const rows = [];
      (sample.gpus || []).forEach((gpu) => {
        if (gpu.processes === null) {
          const tr = document.createElement("tr");
          const td = cell("GPU " + gpu.index + ": the driver does not report processes (N/A)", "muted");
          td.colSpan = 9;
          tr.appendChild(td);
          rows.push(tr);
          return;
        }
        (gpu.processes || []).slice().sort((a, b) => (b.used_memory_bytes || 0) - (a.used_memory_bytes || 0))
          .forEach((proc) => {
            const tr = document.createElement("tr");
            tr.append(cell(String(gpu.index)), cell(String(proc.pid), "num"), cell(proc.user || "N/A"),
              cell(proc.command || "N/A", "command", proc.command), cell(units.format(proc.used_memory_bytes, "bytes"), "num"),
              cell(units.format(proc.sm_percent, "percent"), "num"), cell(units.format(proc.cpu_percent, "percent"), "num"),
              cell(units.format(proc.rss_bytes, "bytes"), "num"), jobCell(proc.pid));
            rows.push(tr);
          });
      });
      return rows;
    }

    function hostRows(processes) {
      return processes.map((proc) => {
        const tr = document.createElement("tr");
        tr.append(cell(String(proc.pid), "num"), cell(proc.user || "N/A"),
          cell(proc.command || "N/A", "command", proc.command), cell(units.format(proc.cpu_percent, "percent"), "num"),
          cell(units.format(proc.rss_bytes, "bytes"), "num"), jobCell(proc.pid));
        return tr;
      });
    }

    // The sampler sends {by_cpu: [...], by_rss: [...]}; an older one sent a plain list.
    function topRows(top) {
      if (Array.isArray(top)) return top;
      return (hostSort === "rss" ? top.by_rss : top.by_cpu) || [];
    }

    function showTop() {
      if (lastTop) fill(hostTable, hostRows(topRows(lastTop)), "No processes reported.");
    }

    (hostSortButtons || []).forEach((button) => button.addEventListener("click", () => {
      hostSort = button.dataset.sort;
      hostSortButtons.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      showTop();
    }));

    return {
      update(sample) {
        const hasGpus = (sample.gpus || []).length > 0;
        fill(gpuTable, gpuRows(sample), hasGpus ? "No process holds GPU memory." : "No GPU on this node.");
        const top = sample.host ? sample.host.top_processes : undefined;
        // The sampler refreshes this table every few seconds; a sample without it keeps the last one.
        if (top && typeof top === "object") {
          lastTop = top;
          showTop();
        }
      },
      // {type: "job", job: {...}} from the "jobs" topic: keep the set of jobs running on this node.
      onJob(job) {
        if (job.node !== config.node) return;
        if (job.status === "running") {
          running.set(job.id, { id: job.id, model: job.model, pid: job.worker_pid });
        } else {
          running.delete(job.id);
        }
      },
    };
  }

  window.perfmonNodeProcesses = { create };
})();

function [f1, f2] = freqspace(n, opt)
  % Shim for MATLAB's freqspace (absent from Octave), written from its documented definition:
  % odd N: -1+1/N : 2/N : 1-1/N ; even N: -1 : 2/N : 1-2/N.  [f1,f2] = freqspace([m n]): f1 has n, f2 m points.
  if numel(n) == 1, n = [n n]; end
  g = @(N) ((0:N-1) - floor(N/2)) * (2/N);
  f1 = g(n(2)); f2 = g(n(1));
  if nargin > 1 && strcmp(opt, 'meshgrid')
    [f1, f2] = meshgrid(f1, f2);
  end
end
